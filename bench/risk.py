"""Risk: CheckOrder throughput over real gRPC, its handler time, and RSS under load.

The risk service runs as its own process (python -m services.risk) fed by scripted
portfolio and exchange peers served from this process, so its book is fresh and every
check runs every rule. Beside it, in the same run, a bare grpc.aio server with only
grpc.health.v1 answers Check: both are driven the same way (CONCURRENCY unary calls in
flight on one channel for SECONDS), so the ratio is what the risk checks cost over an
RPC that does nothing. The handler time (translation and every rule, no transport) is
taken in this process on a book of the same shape, per call, as a p99.

Monte Carlo VaR at 10^6 paths runs in a fresh risk process too, on 500 real 5-minute
returns (tests/services/risk/data): its time, and how far the process's RSS rises
above where it idled (sampled every 10 ms while the call runs).
"""

# Scripted peers' methods are named by the proto and ignore what they are asked.
# ruff: noqa: N802, ARG002

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read better short
from pathlib import Path
from typing import Any, cast

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bench.report import Row
from bench.section import service_process, sized
from bench.startup import BARE_SERVER
from common.config import load_config, parse_settings
from common.database import create_engine, session_factory
from common.memory import MIB, MemoryGuard, rss_bytes
from common.testing import free_port, isolated_config, serving, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.risk.closes import CloseSource
from services.risk.engine import RiskEngine
from services.risk.events import risk_events
from services.risk.limits import RawLimits
from services.risk.main import default_limits
from services.risk.portfolio_var import PortfolioVar
from services.risk.risk_book import SOURCES, Market, OpenOrder, OrderSide, Position, RiskBook
from services.risk.servicer import RiskServicer
from services.risk.settings import VarSettings
from services.risk.storage.repository import RiskRepository
from services.risk.trading_state import initial_state

SECONDS = sized(3.0, 0.3)
CONCURRENCY = 32
HANDLER_CALLS = sized(20_000, 500)  # timed one by one, in this process
SYMBOL = "BTC/USDT"
# Every rule on (rates off: the bench submits far faster than any sane limit).
LIMITS = {
    "RISK__LIMITS__ALLOWED_SYMBOLS": SYMBOL,
    "RISK__LIMITS__MIN_ORDER_NOTIONAL": "10",
    "RISK__LIMITS__MAX_ORDER_NOTIONAL": "100000",
    "RISK__LIMITS__MAX_POSITION_QUANTITY": "10",
    "RISK__LIMITS__MAX_POSITION_NOTIONAL": "500000",
    "RISK__LIMITS__MAX_GROSS_EXPOSURE": "1000000",
    "RISK__LIMITS__MAX_LEVERAGE": "3",
    "RISK__LIMITS__MAX_OPEN_ORDERS": "100",
    "RISK__LIMITS__MAX_ORDERS_PER_SECOND": "0",
    "RISK__LIMITS__MAX_ORDERS_PER_MINUTE": "0",
    "RISK__LIMITS__MAX_PRICE_DEVIATION": "0.05",
    "RISK__LIMITS__DAILY_LOSS_LIMIT": "5000",
    "RISK__LIMITS__MAX_DRAWDOWN": "0.2",
    "RISK__LIMITS__LOSS_COOLDOWN_TRADES": "3",
    "RISK__LIMITS__LOSS_COOLDOWN_SECONDS": "3600",
}
REQUEST = risk_pb2.CheckOrderRequest(
    venue="paper",
    symbol=SYMBOL,
    side=common_pb2.SIDE_BUY,
    type=common_pb2.ORDER_TYPE_LIMIT,
    quantity="0.01",
    price="60000.00",
)


class Portfolio(portfolio_pb2_grpc.PortfolioServiceServicer):
    """100,000 USDT and 0.5 BTC; no position ever changes."""

    async def GetPortfolio(self, request: Any, context: Any) -> Any:
        return portfolio_pb2.GetPortfolioResponse(
            portfolio=portfolio_pb2.Portfolio(cash="100000", equity="130000")
        )

    async def ListPositions(self, request: Any, context: Any) -> Any:
        return portfolio_pb2.ListPositionsResponse(
            positions=[portfolio_pb2.Position(symbol=SYMBOL, quantity="0.5", cost_basis="29000")]
        )

    async def GetEquityHistory(self, request: Any, context: Any) -> Any:
        return portfolio_pb2.GetEquityHistoryResponse()

    async def StreamPositions(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await context.send_initial_metadata(())  # subscribed, as the real portfolio says
        await asyncio.Event().wait()
        yield  # pragma: no cover


class Exchange(exchange_pb2_grpc.ExchangeServiceServicer):
    """The paper venue: one BTC/USDT market at 60,000, three resting orders."""

    async def ListVenues(self, request: Any, context: Any) -> Any:
        paper = exchange_pb2.Venue(name="paper", kind=exchange_pb2.VENUE_KIND_PAPER)
        return exchange_pb2.ListVenuesResponse(venues=[paper])

    async def ListMarkets(self, request: Any, context: Any) -> Any:
        return exchange_pb2.ListMarketsResponse(
            markets=[
                exchange_pb2.Market(
                    symbol=SYMBOL,
                    base="BTC",
                    quote="USDT",
                    type=exchange_pb2.MARKET_TYPE_SPOT,
                    price_increment="0.01",
                    quantity_increment="0.00001",
                    min_notional="5",
                )
            ]
        )

    async def ListOrders(self, request: Any, context: Any) -> Any:
        return exchange_pb2.ListOrdersResponse(
            orders=[
                common_pb2.Order(
                    order_id=f"o-{index}",
                    venue="paper",
                    symbol=SYMBOL,
                    side=common_pb2.SIDE_BUY,
                    quantity="0.01",
                    price="59000",
                    filled_quantity="0",
                    status=common_pb2.ORDER_STATUS_OPEN,
                )
                for index in range(3)
            ]
        )

    async def GetTicker(self, request: Any, context: Any) -> Any:
        return exchange_pb2.GetTickerResponse(
            ticker=exchange_pb2.Ticker(symbol=SYMBOL, bid="59999.99", ask="60000.01")
        )

    async def StreamTickers(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield  # pragma: no cover

    async def StreamOrderUpdates(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield  # pragma: no cover


CANDLES = Path(__file__).resolve().parent.parent / "tests/services/risk/data"
MONTE_CARLO_PATHS = sized(1_000_000, 10_000)


class ExchangeWithCandles(Exchange):
    """The bench's exchange, with 501 real closes (ETH/BTC's, as BTC/USDT's) for VaR."""

    async def GetCandles(self, request: Any, context: Any) -> Any:
        with gzip.open(CANDLES / "freqtrade_5m_eth_ltc_btc.json.gz", "rt") as file:
            rows = json.load(file)["ETH/BTC"][-request.limit :]
        return exchange_pb2.GetCandlesResponse(
            candles=[
                common_pb2.Candle(
                    open_time=Timestamp(seconds=int(row[0]) // 1000), close=repr(row[4])
                )
                for row in rows
            ]
        )


@dataclass(frozen=True)
class MonteCarloFigures:
    seconds: float
    idle_mib: float
    peak_growth_mib: float


async def _monte_carlo_var(root: Path) -> MonteCarloFigures:
    """One Monte Carlo VaR of MONTE_CARLO_PATHS paths in a fresh risk process."""
    portfolio_peer = Portfolio()  # type: ignore[abstract]
    exchange_peer = ExchangeWithCandles()  # type: ignore[abstract]
    add_portfolio = portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server
    add_exchange = exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
    async with (
        serving(portfolio_peer, add_portfolio) as portfolio,
        serving(exchange_peer, add_exchange) as exchange,
    ):
        environment = isolated_config(
            root, PORTFOLIO__ADDRESS=portfolio, EXCHANGE__ADDRESS=exchange
        )
        address = load_config(environment).risk.address
        async with service_process("risk", environment) as process:
            async with grpc.aio.insecure_channel(address) as channel:
                risk = risk_pb2_grpc.RiskServiceStub(channel)
                await _until_approved(risk)
                await risk.ComputeVaR(risk_pb2.ComputeVaRRequest())  # the candles' path, warm
                await asyncio.sleep(1.0)
                idle = rss_bytes(process.pid)
                peak = idle
                request = risk_pb2.ComputeVaRRequest(
                    method=risk_pb2.VAR_METHOD_MONTE_CARLO, simulations=MONTE_CARLO_PATHS
                )
                started = time.perf_counter()
                call = asyncio.ensure_future(risk.ComputeVaR(request, timeout=300))
                while not call.done():
                    peak = max(peak, rss_bytes(process.pid))
                    await asyncio.sleep(0.01)
                await call
                seconds = time.perf_counter() - started
            return MonteCarloFigures(seconds, idle / MIB, (peak - idle) / MIB)


async def _throughput(call: Callable[[], Awaitable[Any]]) -> float:
    """Completed calls per second with CONCURRENCY in flight for SECONDS."""
    done = 0
    deadline = time.perf_counter() + SECONDS

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - started)


async def _bare_health_throughput() -> float:
    address = f"127.0.0.1:{free_port()}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BARE_SERVER, address, stdout=subprocess.DEVNULL
    )
    try:
        await wait_until_serving(address)
        async with grpc.aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            await _throughput(lambda: health.Check(request))  # warm-up
            return await _throughput(lambda: health.Check(request))
    finally:
        process.terminate()
        await process.wait()


async def _risk_throughput(root: Path) -> tuple[float, float, int]:
    """CheckOrder calls per second, RSS in MiB after the load, and approvals seen."""
    # Scripted peers implement only what risk calls (the rest stay UNIMPLEMENTED).
    portfolio_peer = Portfolio()  # type: ignore[abstract]
    exchange_peer = Exchange()  # type: ignore[abstract]
    add_portfolio = portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server
    add_exchange = exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
    async with (
        serving(portfolio_peer, add_portfolio) as portfolio,
        serving(exchange_peer, add_exchange) as exchange,
    ):
        environment = isolated_config(
            root, PORTFOLIO__ADDRESS=portfolio, EXCHANGE__ADDRESS=exchange, **LIMITS
        )
        address = load_config(environment).risk.address
        async with service_process("risk", environment) as process:
            async with grpc.aio.insecure_channel(address) as channel:
                risk = risk_pb2_grpc.RiskServiceStub(channel)
                await _until_approved(risk)
                await _throughput(lambda: risk.CheckOrder(REQUEST))  # warm-up
                rate = await _throughput(lambda: risk.CheckOrder(REQUEST))
                approved = (await risk.CheckOrder(REQUEST)).decision == risk_pb2.DECISION_APPROVE
            return rate, rss_bytes(process.pid) / MIB, int(approved)


async def _until_approved(risk: Any, within: float = 30.0) -> None:
    """Waits for the feeds to sync: until then every check is denied as stale."""
    for _ in range(int(within / 0.05)):
        if (await risk.CheckOrder(REQUEST)).decision == risk_pb2.DECISION_APPROVE:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("risk never approved the bench's order: are its feeds synced?")


@dataclass(frozen=True)
class HandlerTimes:
    """Microseconds per call: wall-clock median and p99, and the p99 of the CPU time the
    call used (unlike wall time, not stretched when the OS runs another process)."""

    wall_p50: float
    wall_p99: float
    cpu_p99: float


async def _handler_times(call: Callable[[], Awaitable[Any]]) -> HandlerTimes:
    for _ in range(HANDLER_CALLS // 10):
        await call()  # warm-up
    wall, cpu = [], []
    for _ in range(HANDLER_CALLS):
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        await call()
        cpu.append(time.thread_time_ns() - started_cpu)
        wall.append(time.perf_counter_ns() - started)
    wall.sort()
    cpu.sort()
    p99 = int(HANDLER_CALLS * 0.99)
    return HandlerTimes(wall[HANDLER_CALLS // 2] / 1000, wall[p99] / 1000, cpu[p99] / 1000)


async def _check_order_handler_times() -> HandlerTimes:
    """CheckOrder's handler (request -> every rule -> response) on the bench's book."""
    book = RiskBook(
        markets={SYMBOL: Market(SYMBOL, "BTC", "USDT", True, D("0.01"), D("0.00001"))},
        marks={SYMBOL: D("60000")},
        positions={SYMBOL: Position(quantity=D("0.5"), cost_basis=D("29000"))},
        open_orders={
            f"o-{i}": OpenOrder(f"o-{i}", SYMBOL, OrderSide.BUY, D("0.01"), D("59000"))
            for i in range(3)
        },
        cash=D("100000"),
        synced=set(SOURCES),
    )
    book.mark_equity(datetime.now(UTC))
    configured = {
        key.removeprefix("RISK__LIMITS__").lower(): value for key, value in LIMITS.items()
    }
    database = create_engine("sqlite+aiosqlite:///:memory:")
    engine = RiskEngine(
        limits=default_limits(parse_settings(RawLimits, configured, "risk.limits.")),
        trading_state=initial_state(datetime.now(UTC)),
        repository=RiskRepository(session_factory(database)),  # untouched by CheckOrder
        events=risk_events(),
    )
    engine.add_account("paper", "paper", book)
    engine.accounts_listed = True
    async with grpc.aio.insecure_channel("127.0.0.1:9") as nowhere:  # never dialled
        servicer = RiskServicer(
            engine,
            engine.events,
            PortfolioVar(CloseSource(nowhere, 1.0), MemoryGuard(96, 0.85)),
            VarSettings(),
            "paper",
        )
        context: Any = None  # CheckOrder reads nothing from its context
        response = await servicer.CheckOrder(REQUEST, context)
        assert response.decision == risk_pb2.DECISION_APPROVE, response
        times = await _handler_times(lambda: servicer.CheckOrder(REQUEST, context))
    await database.dispose()
    return times


async def _health_handler_times() -> HandlerTimes:
    """grpc.health.v1's Check handler, timed the same way: the floor of a handler."""
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    request, context = health_pb2.HealthCheckRequest(), cast(Any, None)
    return await _handler_times(lambda: servicer.Check(request, context))


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-risk-") as directory:
        bare = await _bare_health_throughput()
        rate, rss, approved = await _risk_throughput(Path(directory))
        monte_carlo = await _monte_carlo_var(Path(directory) / "var")
    assert approved, "the bench's order must pass every rule"
    check, floor = await _check_order_handler_times(), await _health_handler_times()
    handler = "CheckOrder handler"
    baseline = "health Check handler"
    return [
        Row(
            "risk",
            f"CheckOrder throughput ({CONCURRENCY} in flight)",
            "calls/s",
            rate,
            bare,
            "bare grpc.aio health Check",
            f">= {0.8 * bare:,.0f} (0.8 x bare)",
        ),
        Row("risk", f"{handler} wall time p50", "us", check.wall_p50, floor.wall_p50, baseline),
        Row(
            "risk",
            f"{handler} wall time p99",
            "us",
            check.wall_p99,
            floor.wall_p99,
            baseline,
            "<= 200",
        ),
        Row(
            "risk",
            f"{handler} CPU time p99",
            "us",
            check.cpu_p99,
            floor.cpu_p99,
            baseline,
            "<= 200",
        ),
        Row("risk", "RSS after the load", "MiB", rss, target="<= 96"),
        Row(
            "risk", f"Monte Carlo VaR, {MONTE_CARLO_PATHS:,} paths: time", "s", monte_carlo.seconds
        ),
        Row(
            "risk",
            f"Monte Carlo VaR, {MONTE_CARLO_PATHS:,} paths: RSS growth",
            "MiB",
            monte_carlo.peak_growth_mib,
            monte_carlo.idle_mib,
            "idle RSS before it",
            "<= 8",
        ),
    ]
