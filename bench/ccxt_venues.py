"""ccxt venues: the exchange's RSS per configured venue, and SubmitOrder on a ccxt venue
against a fake venue beside the fake's own answer time.

The exchange runs as its own process (as under supervisord) with one ccxt venue pointed
at a fake REST venue served from this process (tests/services/exchange: ccxt's recorded
bodies; synthetic extra markets shaped like the recorded one). RSS is read after the
markets are loaded and tickers, books and orders went through, then again after
`SOAK_SECONDS` of a StreamTickers subscriber on every market (`python -m bench.ccxt_venues
600` runs the issue's 10-minute acceptance). `python -m bench.ccxt_venues` prints rows.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from bench.exchange import ApprovingRisk
from bench.report import Row, percentile
from bench.section import service_process, sized
from common.config import load_config
from common.memory import MIB, rss_bytes
from common.testing import isolated_config, serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.risk.v1 import risk_pb2_grpc
from tests.services.exchange.fake_binance import serving_fake_binance
from tests.services.exchange.fake_okx import PASSPHRASE, serving_fake_okx

SOAK_SECONDS = 20.0
ORDERS = sized(100, 5)
# (label, fake, extra markets, venue settings)
SETUPS: list[tuple[str, str, int, dict[str, str]]] = [
    ("binance spot, 1 market", "binance", 0, {}),
    ("binance spot, 3,000 markets (default: all spot)", "binance", 3000, {}),
    ("~2,000 instruments (1,000 spot + 1,000 swap), default: spot", "okx", 1000, {}),
    (
        "~2,000 instruments, spot + swap, no allow-list",
        "okx",
        1000,
        {"MARKET_TYPES": "spot,swap"},
    ),
    (
        "~2,000 instruments, spot, 10-symbol allow-list",
        "okx",
        1000,
        {"SYMBOLS": ",".join(["BTC/USDT"] + [f"C{n:04d}X/USDT" for n in range(9)])},
    ),
]


def _risk() -> ApprovingRisk:
    return ApprovingRisk()  # type: ignore[abstract]


def _fake(kind: str, extra: int) -> AbstractAsyncContextManager[Any]:
    return serving_fake_binance(extra) if kind == "binance" else serving_fake_okx(extra)


@asynccontextmanager
async def _exchange(
    root: Path, kind: str, url: str, risk_address: str, extra: dict[str, str]
) -> AsyncIterator[tuple[Any, exchange_pb2_grpc.ExchangeServiceAsyncStub]]:
    venue = f"EXCHANGE__VENUES__{kind.upper()}__"
    credentials = {"API_KEY": "bench-key", "SECRET": "bench-secret"}
    if kind == "okx":
        credentials["PASSWORD"] = PASSPHRASE
    environment = isolated_config(
        root,
        RISK__ADDRESS=risk_address,
        **{
            f"{venue}EXCHANGE_ID": kind,
            f"{venue}SANDBOX": "false",
            f"{venue}API_URL": url,
            **{f"{venue}{key}_ENV": f"BENCH_{kind.upper()}_{key}" for key in credentials},
            **{f"{venue}{key}": value for key, value in extra.items()},
        },
    )
    environment.update({f"BENCH_{kind.upper()}_{k}": v for k, v in credentials.items()})
    config = load_config(environment)
    async with (
        service_process("exchange", environment, within=120) as process,
        _channel(config.exchange.address) as stub,
    ):
        yield process, stub


@asynccontextmanager
async def _channel(address: str) -> AsyncIterator[exchange_pb2_grpc.ExchangeServiceAsyncStub]:
    import grpc  # noqa: PLC0415 - grpc is imported by every bench anyway

    async with grpc.aio.insecure_channel(address) as channel:
        stub: exchange_pb2_grpc.ExchangeServiceAsyncStub = exchange_pb2_grpc.ExchangeServiceStub(
            channel
        )
        yield stub


async def _venue_rss(  # noqa: PLR0917 - one setup's fields
    root: Path, label: str, kind: str, extra_markets: int, extra: dict[str, str], soak: float
) -> list[Row]:
    async with (
        serving(_risk(), risk_pb2_grpc.add_RiskServiceServicer_to_server) as risk,
        _fake(kind, extra_markets) as fake,
        _exchange(root, kind, fake.url, risk, extra) as (process, stub),
    ):
        markets = await stub.ListMarkets(exchange_pb2.ListMarketsRequest(venue=kind))
        symbol = "BTC/USDT"
        await stub.GetTicker(exchange_pb2.GetTickerRequest(venue=kind, symbol=symbol))
        await stub.GetOrderBook(exchange_pb2.GetOrderBookRequest(venue=kind, symbol=symbol))
        if not extra.get("MARKET_TYPES"):
            for n in range(20):
                await stub.SubmitOrder(_market_buy(kind, f"rss{n}"))
        loaded = rss_bytes(process.pid) / MIB
        stream = stub.StreamTickers(exchange_pb2.StreamTickersRequest(venue=kind))
        peak = loaded
        deadline = time.monotonic() + soak
        while time.monotonic() < deadline and process.returncode is None:
            await asyncio.sleep(1.0)
            peak = max(peak, rss_bytes(process.pid) / MIB)
        stream.cancel()
        alive = process.returncode is None
        after = rss_bytes(process.pid) / MIB if alive else float("nan")
    name = f"{label} ({len(markets.markets)} listed)"
    return [
        Row("exchange", f"RSS ccxt venue {name}, loaded", "MiB", loaded, target="<= 160"),
        Row("exchange", f"RSS ccxt venue {name}, peak over {soak:.0f} s", "MiB", peak,
            target="<= 160"),
        Row("exchange", f"RSS ccxt venue {name}, after {soak:.0f} s (alive={alive})", "MiB",
            after, target="<= 160"),
    ]  # fmt: skip


def _market_buy(kind: str, client_order_id: str) -> exchange_pb2.SubmitOrderRequest:
    return exchange_pb2.SubmitOrderRequest(
        venue=kind,
        symbol="BTC/USDT",
        side=common_pb2.SIDE_BUY,
        type=common_pb2.ORDER_TYPE_MARKET,
        quantity="0.001",
        client_order_id=client_order_id,
    )


async def _submit_latency(root: Path, kind: str) -> list[Row]:
    """SubmitOrder (a market buy: create, plus the lookups the venue's answer needs) on a
    ccxt venue, beside the fake's own answer time for the same requests."""
    async with (
        serving(_risk(), risk_pb2_grpc.add_RiskServiceServicer_to_server) as risk,
        _fake(kind, 0) as fake,
        _exchange(root, kind, fake.url, risk, {}) as (_, stub),
    ):
        answer_times = fake.answer_ms
        await stub.SubmitOrder(_market_buy(kind, "warm"))
        answer_times.clear()
        latencies = []
        for n in range(ORDERS):
            started = time.perf_counter()
            await stub.SubmitOrder(_market_buy(kind, f"lat{n}"))
            latencies.append((time.perf_counter() - started) * 1000)
        per_order = sum(answer_times) / ORDERS
    fake_note = f"the fake's own answer time per order ({len(answer_times) // ORDERS} requests)"
    return [
        Row("exchange", f"SubmitOrder ccxt {kind} fake p50", "ms", percentile(latencies, 50),
            per_order, fake_note),
        Row("exchange", f"SubmitOrder ccxt {kind} fake p99", "ms", percentile(latencies, 99),
            per_order, fake_note),
        Row("exchange", f"SubmitOrder ccxt {kind} fake mean", "ms", statistics.mean(latencies),
            per_order, fake_note),
    ]  # fmt: skip


async def run(
    soak: float = SOAK_SECONDS, setups: list[int] | None = None, latency: bool = True
) -> list[Row]:
    rows: list[Row] = []
    chosen = setups if setups is not None else list(range(len(SETUPS)))
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-ccxt-") as directory:
        for number in chosen:
            label, kind, extra_markets, extra = SETUPS[number]
            root = Path(directory) / f"rss{number}"
            rows += await _venue_rss(root, label, kind, extra_markets, extra, soak)
        if latency:
            for kind in ("binance", "okx"):
                rows += await _submit_latency(Path(directory) / f"lat-{kind}", kind)
    return rows


if __name__ == "__main__":
    # python -m bench.ccxt_venues [soak seconds] [setup numbers...]
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else SOAK_SECONDS
    numbers = [int(n) for n in sys.argv[2:]] or None
    for row in asyncio.run(run(seconds, numbers, latency=numbers is None)):
        print(
            f"{row.measure}: {row.value:.1f} {row.unit}"
            + (f" (baseline {row.baseline:.2f}: {row.baseline_name})" if row.baseline else "")
        )
