"""The exchange: SubmitOrder latency on the paper venue, risk hop included, at a paced
200 requests/s; GetTicker throughput; RSS in paper mode.

The exchange runs as its own process (as under supervisord) against an approving
RiskService served over real gRPC from this process. The baseline is a bare grpc.aio
server answering grpc.health.v1 Check, started and paced the same way in the same run:
the difference is what validation, the risk hop, SQLite and the fill model cost.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.report import Row, percentile
from bench.startup import BARE_SERVER
from common.config import load_config
from common.memory import MIB, rss_bytes
from common.testing import free_port, isolated_config, serving, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc

RATE = 200  # requests per second, the pace
GENTLE_RATE = 50  # a pace this 2-core machine sustains while shared, for the latency floor
REQUESTS = 600
WARMUP = 50
TICKER_SECONDS = 2.0
TICKER_WORKERS = 8


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
    in ms of the calls that succeeded, and how many failed."""
    latencies: list[float] = []
    failed = 0

    async def one(number: int) -> None:
        nonlocal failed
        started = time.perf_counter()
        try:
            await call(number)
        except grpc.aio.AioRpcError:
            failed += 1
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
    return latencies, failed


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
        environment = isolated_config(root, RISK__ADDRESS=risk)
        config = load_config(environment)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.exchange", env=environment,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            address = config.exchange.address
            await wait_until_serving(address)
            await asyncio.sleep(2.0)
            idle_rss = rss_bytes(process.pid) / MIB
            async with grpc.aio.insecure_channel(address) as channel:
                stub: exchange_pb2_grpc.ExchangeServiceAsyncStub = (
                    exchange_pb2_grpc.ExchangeServiceStub(channel)
                )

                def submit(number: int) -> Awaitable[object]:
                    side = common_pb2.SIDE_BUY if number % 2 else common_pb2.SIDE_SELL
                    return stub.SubmitOrder(
                        exchange_pb2.SubmitOrderRequest(
                            venue="paper",
                            symbol="BTC/USDT",
                            side=side,
                            type=common_pb2.ORDER_TYPE_MARKET,
                            quantity="0.001",
                            client_order_id=f"bench-{number}",
                        )
                    )

                latencies, failed = await _paced(submit)
                gentle, _ = await _paced(lambda n: submit(REQUESTS + WARMUP + n), GENTLE_RATE)
                ticker = exchange_pb2.GetTickerRequest(venue="paper", symbol="BTC/USDT")
                throughput = await _throughput(lambda: stub.GetTicker(ticker))
            loaded_rss = rss_bytes(process.pid) / MIB
            return latencies, failed, gentle, throughput, idle_rss, loaded_rss
        finally:
            process.terminate()
            await process.wait()


async def _ccxt_rss(root: Path) -> float:
    """RSS of the exchange with a ccxt (binance) venue configured: ccxt is imported at
    start; its markets load on first use (pointed at a closed local port here)."""
    venue = "EXCHANGE__VENUES__BINANCE__"
    environment = isolated_config(
        root,
        **{
            f"{venue}EXCHANGE_ID": "binance",
            f"{venue}API_URL": f"http://127.0.0.1:{free_port()}",
        },
    )
    config = load_config(environment)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.exchange", env=environment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_until_serving(config.exchange.address)
        await asyncio.sleep(2.0)
        return rss_bytes(process.pid) / MIB
    finally:
        process.terminate()
        await process.wait()


async def run() -> list[Row]:
    from bench import ccxt_venues  # noqa: PLC0415 - it imports this module's ApprovingRisk

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
        *await ccxt_venues.run(soak=10.0),  # RSS per venue; SubmitOrder against fakes
    ]  # fmt: skip
