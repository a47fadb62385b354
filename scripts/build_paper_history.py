"""Builds the paper markets' candle history and the replays of the markets without depth.

Real data only, recombined as services/exchange/data/paper/SOURCES.md documents:

- History (`history-<market>-1m.txt.gz`): for each paper market, four real 1-minute
  series of freqtrade's test data (GPL-3.0) laid end to end. Each segment is scaled so its
  first open is the previous segment's last close (returns kept, no jump at a join); a
  minute missing from a series (no trade in it) becomes a flat candle at the previous
  close with zero volume; the last 31 days are kept and scaled as a whole so the last
  close is exactly the replay's first trade price: the history runs into the replay
  without a jump. Prices are rounded to the market's tick, volumes (the source pair's
  base volumes) to its lot.
- `binance-usdm-ethusdt-20240808-trades.txt.gz`: the trades of hftbacktest's Binance
  USD-M ETHUSDT capture (MIT), as `T` lines (scripts/slice_paper_data.py's format).
- `ada-candles-as-trades.txt.gz`: ADA/USDT's present: the last stretch of freqtrade's
  ADA_BTC 1m series (the stretch its history does not contain, chosen so it ends near
  the price it starts at), each candle as four trades (open at :00, the extreme nearer
  the open at :15, the other at :30, close at :45, a quarter of the volume each).

    python scripts/build_paper_history.py FREQTRADE_1M_DIR HFT_RAW_DIR services/exchange/data/paper

FREQTRADE_1M_DIR holds the `<PAIR>-1m.json` files: ../shared/data/ohlcv/freqtrade_1m and,
from freqtrade's git history (removed in eca8ddab, present in its parent 8c5b2994),
DASH_BTC, NXT_BTC, POWR_BTC, XMR_BTC and ZEC_BTC (`git show 8c5b2994:tests/testdata/...`).
"""

from __future__ import annotations

import gzip
import json
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

MINUTE_MS = 60_000
KEPT_MINUTES = 31 * 24 * 60
PRESENT_MINUTES = 24 * 60  # ADA/USDT's replayed present: the last day of ADA_BTC
ADA_LEVEL = Decimal("0.3350")  # ADA/USDT's first replayed price: the rescaled level


@dataclass(frozen=True)
class Spec:
    name: str  # file name part
    sources: tuple[str, ...]  # freqtrade pairs, oldest segment first
    tick: Decimal
    lot: Decimal


SPECS = {
    "BTC/USDT": Spec(
        "btcusdt", ("UNITTEST_BTC", "XRP_ETH", "ETH_BTC", "LTC_BTC"), Decimal("0.01"),
        Decimal("0.00001"),
    ),
    "ETH/USDT": Spec(
        "ethusdt", ("ETC_BTC", "XMR_BTC", "ZEC_BTC", "DASH_BTC"), Decimal("0.01"),
        Decimal("0.0001"),
    ),
    "ADA/USDT": Spec(
        "adausdt", ("XLM_BTC", "NXT_BTC", "POWR_BTC", "ADA_BTC"), Decimal("0.0001"),
        Decimal("0.1"),
    ),
}  # fmt: skip

Bar = list[float]  # open, high, low, close, volume


def load_minutes(path: Path) -> tuple[int, list[Bar]]:
    """(first minute's time, one bar per minute); missing minutes flat at the last close."""
    rows = json.loads(path.read_text())
    first = int(rows[0][0])
    bars: list[Bar] = []
    for ts, open_, high, low, close, volume in rows:
        while first + len(bars) * MINUTE_MS < int(ts):
            last = bars[-1][3]
            bars.append([last, last, last, last, 0.0])
        bars.append([float(open_), float(high), float(low), float(close), float(volume)])
    return first, bars


def scaled(bars: list[Bar], factor: float) -> list[Bar]:
    return [[o * factor, h * factor, low * factor, c * factor, v] for o, h, low, c, v in bars]


def chain(segments: list[list[Bar]]) -> list[Bar]:
    joined = list(segments[0])
    for segment in segments[1:]:
        joined += scaled(segment, joined[-1][3] / segment[0][0])
    return joined


def first_trade_price(replay: Path) -> Decimal:
    with gzip.open(replay, "rt") as lines:
        for line in lines:
            if line.startswith("T "):
                return Decimal(line.split()[2])
    raise SystemExit(f"{replay} has no trade")


def write_history(target: Path, spec: Spec, bars: list[Bar], end_price: Decimal) -> None:
    bars = bars[-KEPT_MINUTES:]
    bars = scaled(bars, float(end_price) / bars[-1][3])
    tick, lot = float(spec.tick), float(spec.lot)
    rows = [[round(value / tick) for value in bar[:4]] + [round(bar[4] / lot)] for bar in bars]
    rows[-1][3] = int(end_price / spec.tick)  # exactly the replay's first price
    lines = [
        f"# {spec.sources} 1m (freqtrade tests/testdata, GPL-3.0), chained and rescaled: "
        "see SOURCES.md",
        "# P <tick> <lot> <minutes>; then per minute, oldest first, in ticks and lots:",
        "# <open - previous close> <high - open> <open - low> <close - open> <volume>",
        f"P {spec.tick} {spec.lot} {len(rows)}",
    ]
    previous_close = 0  # the first row carries its open whole
    for open_, raw_high, raw_low, close, volume in rows:
        high = max(raw_high, open_, close)
        low = min(raw_low, open_, close)
        lines.append(
            f"{open_ - previous_close} {high - open_} {open_ - low} {close - open_} {volume}"
        )
        previous_close = close
    target.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), 9, mtime=0))


def eth_trades(raw: Path) -> list[str]:
    lines = []
    with gzip.open(raw, "rt") as feed:
        for line in feed:
            message = json.loads(line.split(" ", 1)[1])
            data = message.get("data", {})
            if data.get("e") == "trade":
                taker = "s" if data["m"] else "b"
                price = f"{Decimal(data['p']).normalize():f}"
                size = f"{Decimal(data['q']).normalize():f}"
                lines.append(f"T {data['T']} {price} {size} {taker}")
    return lines


def candles_as_trades(first_ms: int, bars: list[Bar], spec: Spec) -> list[str]:
    lines = []
    previous = None
    for index, (open_, high, low, close, volume) in enumerate(bars):
        start = first_ms + index * MINUTE_MS
        extremes = (low, high) if abs(open_ - low) <= abs(open_ - high) else (high, low)
        size = Decimal(round(volume / 4 / float(spec.lot))) * spec.lot
        for offset, price in zip((0, 15, 30, 45), (open_, *extremes, close), strict=True):
            ticks = Decimal(round(price / float(spec.tick))) * spec.tick
            taker = "b" if previous is None or ticks >= previous else "s"
            previous = ticks
            lines.append(
                f"T {start + offset * 1000} {ticks.normalize():f} {size.normalize():f} {taker}"
            )
    return lines


def gz_lines(target: Path, lines: list[str]) -> None:
    target.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), 9, mtime=0))


def main() -> None:
    freqtrade, hft, out = (Path(arg) for arg in sys.argv[1:4])
    gz_lines(
        out / "binance-usdm-ethusdt-20240808-trades.txt.gz",
        eth_trades(hft / "usdm" / "ethusdt_20240808.gz"),
    )
    for symbol, spec in SPECS.items():
        segments = [load_minutes(freqtrade / f"{pair}-1m.json") for pair in spec.sources]
        bars = chain([segment for _, segment in segments])
        if symbol == "ADA/USDT":
            cut = len(bars) - PRESENT_MINUTES
            factor = float(ADA_LEVEL) / bars[cut][0]
            ada_first_ms, ada_bars = segments[-1]
            offset = len(bars) - len(ada_bars)
            replay = scaled(bars[cut:], factor)
            gz_lines(
                out / "ada-candles-as-trades.txt.gz",
                candles_as_trades(ada_first_ms + (cut - offset) * MINUTE_MS, replay, spec),
            )
            bars = bars[:cut]
            end_price = first_trade_price(out / "ada-candles-as-trades.txt.gz")
        elif symbol == "ETH/USDT":
            end_price = first_trade_price(out / "binance-usdm-ethusdt-20240808-trades.txt.gz")
        else:
            end_price = first_trade_price(out / "binance-spot-btcusdt-20240808.txt.gz")
        write_history(out / f"history-{spec.name}-1m.txt.gz", spec, bars, end_price)


if __name__ == "__main__":
    main()
