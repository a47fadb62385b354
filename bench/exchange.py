"""The exchange: SubmitOrder latency on the paper venue, risk hop included, at a paced
200 requests/s; GetTicker throughput; RSS in paper mode. The paper history: GetCandles
of 30 days at 1m (pages of 1000) beside GetTicker, a market's first GetCandles (it reads
the market's past), RSS before and after every market's past is read; and
StreamTickers of `paper-live` against a fake Binance on 127.0.0.1 (messages/s, CPU).

The exchange runs as its own process (as under supervisord) against an approving
RiskService served over real gRPC from this process. The baseline is a bare grpc.aio
server answering grpc.health.v1 Check, started and paced the same way in the same run:
the difference is what validation, the risk hop, SQLite and the fill model cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.report import Row, percentile
from bench.section import (
    SectionFailed,
    ample_account,
    cpu_seconds,
    reason,
    service_process,
    sized,
    timed,
)
from bench.startup import BARE_SERVER
from common.config import load_config
from common.memory import MIB, rss_bytes
from common.testing import free_port, isolated_config, serving, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc

RATE = 200  # requests per second, the pace
GENTLE_RATE = 50  # a pace this 2-core machine sustains while shared, for the latency floor
REQUESTS = sized(600, 40)
WARMUP = sized(50, 5)
TICKER_SECONDS = sized(2.0, 0.3)
SETTLE_SECONDS = sized(2.0, 0.5)
HISTORY_PAGES = sized(44, 2)  # 44 x 1000 minutes > 30 days
LIVE_STREAM_SECONDS = sized(5.0, 1.0)
LIVE_POLL_SECONDS = 0.05
TICKER_WORKERS = 8
QUANTITY = Decimal("0.001")


class ApprovingRisk(risk_pb2_grpc.RiskServiceServicer):
    async def CheckOrder(self, request: Any, context: Any) -> risk_pb2.CheckOrderResponse:  # noqa: N802, ARG002
        return risk_pb2.CheckOrderResponse(decision=risk_pb2.DECISION_APPROVE)

    async def GetTradingState(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        active = risk_pb2.TradingStateInfo(state=risk_pb2.TRADING_STATE_ACTIVE)
        return risk_pb2.GetTradingStateResponse(trading_state=active)

    async def StreamRiskEvents(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802, ARG002
        await asyncio.Event().wait()  # no events during the bench
        yield risk_pb2.StreamRiskEventsResponse()


async def _paced(
    call: Callable[[int], Awaitable[object]], rate: int = RATE
) -> tuple[list[float], int]:
    """Starts call(i) at i/rate seconds, whether or not earlier ones finished; the latencies
    in ms of the calls that succeeded, and how many failed. An order refused for balance is
    the load's design error, not a measure: the section fails with it."""
    latencies: list[float] = []
    failures: list[str] = []

    async def one(number: int) -> None:
        started = time.perf_counter()
        try:
            await call(number)
        except grpc.aio.AioRpcError as error:
            failures.append(reason(error))
            return
        latencies.append((time.perf_counter() - started) * 1000)

    for number in range(WARMUP):
        await call(-number - 1)
    origin = time.perf_counter()
    tasks = []
    for number in range(REQUESTS):
        delay = origin + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number)))
    await asyncio.gather(*tasks)
    refused = [failure for failure in failures if "INSUFFICIENT_BALANCE" in failure]
    if refused or not latencies:
        raise SectionFailed(f"{len(failures)} of {REQUESTS} orders failed: {failures[0]}")
    if failures:
        print(f"[bench] exchange: {len(failures)} orders failed, first: {failures[0]}",
              file=sys.stderr)  # fmt: skip
    return latencies, len(failures)


async def _throughput(call: Callable[[], Awaitable[object]]) -> float:
    count = 0
    deadline = time.perf_counter() + TICKER_SECONDS

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await call()
            count += 1

    await asyncio.gather(*(worker() for _ in range(TICKER_WORKERS)))
    return count / TICKER_SECONDS


async def _bare() -> tuple[list[float], float]:  # latencies, throughput
    address = f"127.0.0.1:{free_port()}"
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE_SERVER, address)
    try:
        await wait_until_serving(address)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            latencies, _ = await _paced(lambda _n: stub.Check(request))
            throughput = await _throughput(lambda: stub.Check(request))
        return latencies, throughput
    finally:
        process.terminate()
        await process.wait()


async def _exchange(root: Path) -> tuple[list[float], int, list[float], float, float, float]:
    # The generated base answers UNIMPLEMENTED for the RPCs left out.
    approving = ApprovingRisk()  # type: ignore[abstract]
    async with serving(approving, risk_pb2_grpc.add_RiskServiceServicer_to_server) as risk:
        environment = isolated_config(root, RISK__ADDRESS=risk, **ample_account())
        config = load_config(environment)
        address = config.exchange.address
        async with service_process("exchange", environment) as process:
            await asyncio.sleep(SETTLE_SECONDS)
            idle_rss = rss_bytes(process.pid) / MIB
            async with grpc.aio.insecure_channel(address) as channel:
                stub: exchange_pb2_grpc.ExchangeServiceAsyncStub = (
                    exchange_pb2_grpc.ExchangeServiceStub(channel)
                )
                await _check_balances(stub)

                def submit(number: int) -> Awaitable[object]:
                    side = common_pb2.SIDE_BUY if number % 2 else common_pb2.SIDE_SELL
                    return stub.SubmitOrder(
                        exchange_pb2.SubmitOrderRequest(
                            venue="paper",
                            symbol="BTC/USDT",
                            side=side,
                            type=common_pb2.ORDER_TYPE_MARKET,
                            quantity=str(QUANTITY),
                            client_order_id=f"bench-{number}",
                        )
                    )

                latencies, failed = await _paced(submit)
                gentle, _ = await _paced(lambda n: submit(REQUESTS + WARMUP + n), GENTLE_RATE)
                ticker = exchange_pb2.GetTickerRequest(venue="paper", symbol="BTC/USDT")
                throughput = await _throughput(lambda: stub.GetTicker(ticker))
            loaded_rss = rss_bytes(process.pid) / MIB
            return latencies, failed, gentle, throughput, idle_rss, loaded_rss


async def _check_balances(stub: exchange_pb2_grpc.ExchangeServiceAsyncStub) -> None:
    """The paper account covers every order of the load at once, whichever side (the
    load buys and sells in turn, so it needs far less)."""
    ticker = await stub.GetTicker(exchange_pb2.GetTickerRequest(venue="paper", symbol="BTC/USDT"))
    balances = await stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
    free = {balance.asset: Decimal(balance.free) for balance in balances.balances}
    orders = 2 * (REQUESTS + WARMUP)
    needed = {"BTC": orders * QUANTITY, "USDT": orders * QUANTITY * Decimal(ticker.ticker.ask)}
    for asset, amount in needed.items():
        if free.get(asset, Decimal(0)) < amount:
            raise SectionFailed(f"paper {asset} {free.get(asset)} is below the load's {amount}")


async def _ccxt_rss(root: Path) -> float:
    """RSS of the exchange with a ccxt (binance) venue configured: ccxt is imported at
    start; its markets load on first use (pointed at a closed local port here)."""
    venue = "EXCHANGE__VENUES__BINANCE__"
    environment = isolated_config(
        root,
        **{
            f"{venue}EXCHANGE_ID": "binance",
            f"{venue}TRADING": "false",  # market data only: no keys needed
            f"{venue}API_URL": f"http://127.0.0.1:{free_port()}",
        },
    )
    async with service_process("exchange", environment) as process:
        await asyncio.sleep(SETTLE_SECONDS)
        return rss_bytes(process.pid) / MIB


async def _paper_history(root: Path) -> list[Row]:
    """GetCandles over the bundled 30 days at 1m, page by page, beside GetTicker; RSS
    before any candles were asked for, and once every market's past has been read (a
    market's first GetCandles reads it)."""
    environment = isolated_config(root)
    config = load_config(environment)
    async with service_process("exchange", environment) as process:
        await asyncio.sleep(2.0)
        rss_unread = rss_bytes(process.pid) / MIB
        async with grpc.aio.insecure_channel(config.exchange.address) as channel:
            stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
            markets = await stub.ListMarkets(exchange_pb2.ListMarketsRequest(venue="paper"))
            firsts = []
            for market in markets.markets:
                began = time.perf_counter()
                await stub.GetCandles(
                    exchange_pb2.GetCandlesRequest(
                        venue="paper", symbol=market.symbol, timeframe=common_pb2.TIMEFRAME_1M,
                        limit=1,
                    )
                )  # fmt: skip
                firsts.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(1.0)
            rss = rss_bytes(process.pid) / MIB
            start = time.time() - 30 * 86400
            pages: list[float] = []
            candles = 0
            for page in range(HISTORY_PAGES):
                request = exchange_pb2.GetCandlesRequest(
                    venue="paper", symbol="BTC/USDT", timeframe=common_pb2.TIMEFRAME_1M,
                    limit=1000,
                )  # fmt: skip
                request.start_time.FromMilliseconds(int(start * 1000) + page * 60_000_000)
                began = time.perf_counter()
                candles += len((await stub.GetCandles(request)).candles)
                pages.append((time.perf_counter() - began) * 1000)
            hourly = exchange_pb2.GetCandlesRequest(
                venue="paper", symbol="BTC/USDT", timeframe=common_pb2.TIMEFRAME_1H, limit=720
            )
            hours = await timed(lambda: stub.GetCandles(hourly), 20)
            ticker = exchange_pb2.GetTickerRequest(venue="paper", symbol="BTC/USDT")
            tickers = await timed(lambda: stub.GetTicker(ticker), 200)
        return [
            Row("exchange", "GetCandles 1m x1000 (one of 44 pages = 30 days) p50", "ms",
                percentile(pages, 50), percentile(tickers, 50), "GetTicker p50, sequential"),
            Row("exchange", f"GetCandles 30 days at 1m, all pages ({candles} candles)", "ms",
                sum(pages)),
            Row("exchange", "GetCandles 1h x720 (30 days) p50", "ms", percentile(hours, 50),
                percentile(tickers, 50), "GetTicker p50, sequential"),
            Row("exchange", "GetCandles, a market's first call (reads its 31-day past), max",
                "ms", max(firsts)),
            Row("exchange", f"RSS paper, {len(firsts)} markets, no candles asked for, idle",
                "MiB", rss_unread),
            Row("exchange", f"RSS paper, {len(firsts)} markets, 31-day history read, idle", "MiB",
                rss, target="<= 81.6 (85% of 96)"),
        ]  # fmt: skip


@asynccontextmanager
async def _running(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """`work` as a task beside the block, cancelled after it."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _paper_live(root: Path) -> list[Row]:
    """StreamTickers of paper-live polling a fake Binance (recorded bodies) every 50 ms."""
    from tests.services.exchange.paper.live_testing import (  # noqa: PLC0415
        MovingBinance,
        serving_moving_binance,
    )

    async def trading(fake: MovingBinance) -> None:
        """A trade a poll on the fake venue, the price moving by a cent each: the ticker
        changes at every poll, as a liquid market's does."""
        for number in itertools.count():
            fake.print_trade(f"{42500 + number % 100 / 100:.2f}", "0.001", number % 2 == 0)
            await asyncio.sleep(LIVE_POLL_SECONDS)

    async with serving_moving_binance() as fake, _running(trading(fake)):
        environment = isolated_config(
            root,
            EXCHANGE__PAPER__SOURCE="binance",
            EXCHANGE__PAPER__LIVE_API_URL=fake.url,
            EXCHANGE__PAPER__LIVE_POLL_SECONDS=str(LIVE_POLL_SECONDS),
        )
        config = load_config(environment)
        async with service_process("exchange", environment) as process:
            await asyncio.sleep(3.0)
            async with grpc.aio.insecure_channel(config.exchange.address) as channel:
                stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
                stream = stub.StreamTickers(
                    exchange_pb2.StreamTickersRequest(venue="paper-live", symbols=["BTC/USDT"])
                )
                await stream.read()
                cpu_before, began = cpu_seconds(process.pid), time.perf_counter()
                messages = 0
                while time.perf_counter() - began < LIVE_STREAM_SECONDS:
                    await stream.read()
                    messages += 1
                elapsed = time.perf_counter() - began
                cpu = (cpu_seconds(process.pid) - cpu_before) / elapsed * 100
                stream.cancel()
            rss = rss_bytes(process.pid) / MIB
    return [
        Row("exchange", "paper-live StreamTickers, fake venue polled and trading every 50 ms",
            "msg/s",
            messages / elapsed),
        Row("exchange", "paper-live exchange CPU while streaming", "% of a core", cpu),
        Row("exchange", "RSS with paper-live (ccxt imported)", "MiB", rss, target="<= 160"),
    ]  # fmt: skip


async def paper_data_rows() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-paper-") as directory:
        return await _paper_history(Path(directory) / "history") + await _paper_live(
            Path(directory) / "live"
        )


async def run() -> list[Row]:
    from bench import ccxt_venues  # noqa: PLC0415 - it imports this module's ApprovingRisk

    paper_rows = await paper_data_rows()
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-exchange-") as directory:
        bare_latencies, bare_throughput = await _bare()
        latencies, failed, gentle, throughput, idle_rss, loaded_rss = await _exchange(
            Path(directory) / "paper"
        )
        ccxt_rss = await _ccxt_rss(Path(directory) / "ccxt")
    bare = "bare grpc.aio unary (health Check), same pacing"
    return [
        Row("exchange", "SubmitOrder paper+risk p50 @200/s", "ms",
            percentile(latencies, 50), percentile(bare_latencies, 50), bare, "<= 2"),
        Row("exchange", "SubmitOrder paper+risk p99 @200/s", "ms",
            percentile(latencies, 99), percentile(bare_latencies, 99), bare, "<= 6"),
        Row("exchange", f"SubmitOrder failed of {REQUESTS} @200/s", "count", failed, target="0"),
        Row("exchange", f"SubmitOrder paper+risk p50 @{GENTLE_RATE}/s", "ms",
            percentile(gentle, 50), percentile(bare_latencies, 50), bare),
        Row("exchange", f"SubmitOrder paper+risk p99 @{GENTLE_RATE}/s", "ms",
            percentile(gentle, 99), percentile(bare_latencies, 99), bare),
        Row("exchange", f"GetTicker throughput ({TICKER_WORKERS} in flight)", "req/s",
            throughput, bare_throughput, bare),
        Row("exchange", "RSS paper, idle", "MiB", idle_rss, target="<= 64"),
        Row("exchange", f"RSS paper, after {REQUESTS + WARMUP} orders", "MiB", loaded_rss,
            target="<= 64"),
        Row("exchange", "RSS with a ccxt venue configured, idle", "MiB", ccxt_rss,
            target="<= 160"),
        *paper_rows,
        # RSS per venue; SubmitOrder against fakes
        *await ccxt_venues.run(soak=sized(10.0, 1.0), setups=sized(None, [0])),
    ]  # fmt: skip
