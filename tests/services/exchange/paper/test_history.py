"""The paper candle history: minute bars of the replayed trades aggregate exactly into
every timeframe; the newest bars are kept, up to a capacity; a bundled past goes in
front of them, read when candles are first asked for."""

from __future__ import annotations

import asyncio
import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from services.exchange.markets import Candle
from services.exchange.paper.history import (
    PAST_PRICE_TYPECODE,
    MinuteBars,
    PastFile,
    load_past,
)

D = Decimal
MINUTE = 60_000
T0 = 1_796_000_400_000  # a whole hour


def _bars() -> MinuteBars:
    bars = MinuteBars()
    for minute, price, size in (
        (0, "100.5", "0.1"),
        (0, "101", "0.2"),
        (1, "99.25", "1"),
        (4, "102", "0.00000001"),
        (5, "103", "2"),
        (7, "98", "3"),
    ):
        bars.add(T0 + minute * MINUTE + 500, D(price), D(size))
    return bars


def test_minute_bars_aggregate_into_wider_candles() -> None:
    assert _bars().candles(5 * MINUTE, None, 10) == [
        Candle(T0, D("100.5"), D("102"), D("99.25"), D("102"), D("1.30000001")),
        Candle(T0 + 5 * MINUTE, D("103"), D("103"), D("98"), D("98"), D("5")),
    ]


def test_since_takes_the_first_candles_from_it_and_none_the_latest() -> None:
    bars = _bars()
    assert [c.open_time_ms for c in bars.candles(MINUTE, T0 + MINUTE, 2)] == [
        T0 + MINUTE,
        T0 + 4 * MINUTE,
    ]
    assert [c.open_time_ms for c in bars.candles(MINUTE, None, 2)] == [
        T0 + 5 * MINUTE,
        T0 + 7 * MINUTE,
    ]
    assert MinuteBars().candles(MINUTE, None, 5) == []


def test_only_the_newest_minutes_are_kept() -> None:
    bars = MinuteBars(capacity=8)
    for minute in range(20):
        bars.add(T0 + minute * MINUTE, D(minute + 1), D(1))
    kept = bars.candles(MINUTE, 0, 100)
    assert 8 <= len(kept) <= 9
    assert kept[-1].close == D(20)


def _past(directory: Path, minutes: int) -> PastFile:
    """A bundled past in ticks of 0.01 and lots of 0.001: minute i opens at 1000 + i,
    high +3, low -2, close +1 (so each next open is 0 off the previous close)."""
    rows = [f"{1000 if i == 0 else 0} 3 2 1 {i % 7 + 1}" for i in range(minutes)]
    text = f"# made by a test\nP 0.01 0.001 {minutes}\n" + "\n".join(rows) + "\n"
    return PastFile.open(_history_file(directory / "past.txt.gz", text))


def _bars_after(past: PastFile) -> MinuteBars:
    return MinuteBars(tick=past.tick, lot=past.lot, price_typecode=PAST_PRICE_TYPECODE)


def _naive(bars: list[tuple[int, D, D, D, D, D]], width: int) -> list[Candle]:
    """Minute bars (start, open, high, low, close, volume) grouped by hand into candles."""
    candles: dict[int, list[tuple[int, D, D, D, D, D]]] = {}
    for bar in bars:
        candles.setdefault(bar[0] - bar[0] % width, []).append(bar)
    return [
        Candle(
            start,
            group[0][1],
            max(bar[2] for bar in group),
            min(bar[3] for bar in group),
            group[-1][4],
            sum((bar[5] for bar in group), D(0)),
        )
        for start, group in candles.items()
    ]


def test_a_preloaded_past_and_the_minutes_after_it_read_as_one_history(
    tmp_path: Path,
) -> None:
    past = _past(tmp_path, 90)
    bars = _bars_after(past)
    end = T0 + 90 * MINUTE + 1234  # the replay starts inside a minute
    bars.preload(past, end)
    expected = [
        (
            T0 + i * MINUTE,
            D(1000 + i) / 100,
            D(1003 + i) / 100,
            D(998 + i) / 100,
            D(1001 + i) / 100,
            D(i % 7 + 1) / 1000,
        )
        for i in range(90)
    ]
    for minute in (90, 91, 95, 96, 131):  # with minutes without trades between
        bars.add(T0 + minute * MINUTE + 7, D("20.5"), D("0.004"))
        price = D("20.5")
        expected.append((T0 + minute * MINUTE, price, price, price, price, D("0.004")))

    for width in (MINUTE, 5 * MINUTE, 15 * MINUTE, 60 * MINUTE):
        candles = _naive(expected, width)
        assert bars.candles(width, None, 1000) == candles
        assert bars.candles(width, None, 3) == candles[-3:]
        # From before the past, inside it, at its last minute, across the gap after it.
        for minute in (-60, 0, 1, 89, 90, 92, 131):
            since = T0 + minute * MINUTE - (T0 + minute * MINUTE) % width
            opening = [candle for candle in candles if candle.open_time_ms >= since]
            assert bars.candles(width, since, 4) == opening[:4], (width, minute)


def test_trimming_reaches_into_the_preloaded_past(tmp_path: Path) -> None:
    past = _past(tmp_path, 60)
    bars = _bars_after(past)
    bars.preload(past, T0 + 60 * MINUTE)
    added = bars.capacity + bars.capacity // 8 - 60 + 1  # one more than room for
    for minute in range(60, 60 + added):
        bars.add(T0 + minute * MINUTE, D("12"), D("0.001"))

    kept = bars.candles(MINUTE, 0, bars.capacity + 100)
    assert len(kept) == bars.capacity
    assert kept[-1].open_time_ms == T0 + (60 + added - 1) * MINUTE
    # Consecutive minutes from the first kept one: the past's ones were dropped first.
    assert [c.open_time_ms for c in kept] == [
        kept[0].open_time_ms + i * MINUTE for i in range(len(kept))
    ]
    assert kept[0].open_time_ms > T0 + 59 * MINUTE  # the whole past is gone


def test_the_past_is_read_once_when_candles_are_first_asked_for(tmp_path: Path) -> None:
    past = _past(tmp_path, 30)
    bars = _bars_after(past)
    bars.preload(past, T0 + 30 * MINUTE)
    bars.add(T0 + 30 * MINUTE, D("12"), D("0.001"))
    assert not bars.past_read  # started, traded, nobody charted: nothing read

    async def two_charts_at_once() -> None:
        await asyncio.gather(bars.read_past(), bars.read_past())

    asyncio.run(two_charts_at_once())
    assert bars.past_read
    candles = bars.candles(MINUTE, None, 100)
    assert [c.open_time_ms for c in candles] == [T0 + i * MINUTE for i in range(31)]
    assert (candles[0].open, candles[29].close, candles[30].close) == (
        D("10.00"),
        D("10.30"),
        D("12"),
    )


def _history_file(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="ascii") as file:
        file.write(text)
    return path


def test_a_bundled_history_reads_back_minute_by_minute(tmp_path: Path) -> None:
    rows = "# a comment\nP 0.01 0.001 3\n1000 5 2 3 7\n1 0 4 -4 0\n-10 20 0 20 1\n"
    past = load_past(_history_file(tmp_path / "h.txt.gz", rows))
    assert (past.tick, past.lot, len(past)) == (D("0.01"), D("0.001"), 3)
    # Each open is the previous close plus its delta; high, low, close are off the open.
    assert list(past.opens) == [1000, 1004, 990]
    assert list(past.highs) == [1005, 1004, 1010]
    assert list(past.lows) == [998, 1000, 990]
    assert list(past.closes) == [1003, 1000, 1010]
    assert list(past.volumes) == [7, 0, 1]


@pytest.mark.parametrize("text", ["", "# a comment\n1000 5 2 3 7\nP 0.01 0.001 1\n"])
def test_a_file_without_a_p_line_is_refused_at_start(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match=r"h\.txt\.gz is not a candle history"):
        PastFile.open(_history_file(tmp_path / "h.txt.gz", text))


@pytest.mark.parametrize(
    "text",
    [
        "1000 5 2 3 7\n",  # no P line
        "P 0.01 0.001 2\n1000 5 2 3 7\n",  # fewer rows than it says
        "P 0.01 0.001 1\n1000 5 2 3 7\n1 0 4 -4 0\n",  # more
    ],
)
def test_a_history_that_does_not_match_its_p_line_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match=r"h\.txt\.gz"):
        load_past(_history_file(tmp_path / "h.txt.gz", text))
