"""The whole stack as `make run` runs it (supervisord, paper venue, real risk hop): each
process's RSS idle and under an order load, and an order's round trip straight to gRPC
and through the gateway.

The round trips are sequential market orders (exchange -> RiskService.CheckOrder ->
paper venue -> SQLite outbox; portfolio and risk follow the executions meanwhile). The
baseline is grpc.health.v1 Check on the exchange's own port in the same run: one bare
gRPC round trip to the same process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.gateway import TOKEN
from bench.http import HttpConnection, raw_request, wait_for_http
from bench.report import Row
from common.config import SERVICE_NAMES, Config, load_config
from common.memory import MIB, rss_bytes
from common.stack import PROGRAMS
from common.testing import isolated_config, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.auth import digest

SECTION = "stack"
ROUND_TRIPS = 300
LOAD_CLIENTS = 8
LOAD_SECONDS = 5.0
SETTLE_SECONDS = 3.0
READY_WITHIN = 60.0
# Buys only (risk allows no sell beyond what its book has seen bought) of ~6 USDT, just
# above the venue's minimum notional: ~1,500 orders use a tenth of the paper cash.
QUANTITY = "0.0001"
_sequence = itertools.count()


def _http_order(port: int) -> bytes:
    number = next(_sequence)
    order = {
        "venue": "paper",
        "symbol": "BTC/USDT",
        "side": "SIDE_BUY",
        "type": "ORDER_TYPE_MARKET",
        "quantity": QUANTITY,
        "clientOrderId": f"http-{number}",
    }
    return raw_request("POST", "/v1/orders", port, TOKEN, json.dumps(order).encode())


def _order_request() -> exchange_pb2.SubmitOrderRequest:
    number = next(_sequence)
    return exchange_pb2.SubmitOrderRequest(
        venue="paper",
        symbol="BTC/USDT",
        side=common_pb2.SIDE_BUY,
        type=common_pb2.ORDER_TYPE_MARKET,
        quantity=QUANTITY,
        client_order_id=f"grpc-{number}",
    )


def program_pids(supervisord_pid: int) -> dict[str, int]:
    """The supervised processes by program name, from supervisord's children."""
    children = Path(f"/proc/{supervisord_pid}/task/{supervisord_pid}/children").read_text()
    pids: dict[str, int] = {}
    for pid in map(int, children.split()):
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        for name in PROGRAMS:
            module = b"gateway" if name == "gateway" else f"services.{name}".encode()
            if module in arguments:
                pids[name] = pid
    return pids


async def _until_risk_approves(stub: exchange_pb2_grpc.ExchangeServiceAsyncStub) -> None:
    """Risk fails closed until it has read its peers after the start."""
    deadline = time.perf_counter() + READY_WITHIN
    while True:
        try:
            await stub.SubmitOrder(_order_request(), timeout=5)
            return
        except grpc.aio.AioRpcError:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.25)


async def _latencies(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class _PeakRss:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {name: 0 for name in pids}

    def sample(self) -> None:
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], rss_bytes(pid))


async def _order_load(port: int, rss: _PeakRss) -> float:
    """Orders per second through the gateway from LOAD_CLIENTS keep-alive clients."""
    connections = [await HttpConnection.open(port) for _ in range(LOAD_CLIENTS)]
    done = 0
    deadline = time.perf_counter() + LOAD_SECONDS

    async def client(connection: HttpConnection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await connection.request(_http_order(port))
            done += 1

    async def sampler() -> None:
        while time.perf_counter() < deadline:
            rss.sample()
            await asyncio.sleep(0.1)

    started = time.perf_counter()
    await asyncio.gather(sampler(), *(client(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    rss.sample()
    return done / elapsed


async def _measure(config: Config, supervisord_pid: int) -> list[Row]:
    port = config.gateway.port
    async with grpc.aio.insecure_channel(config.exchange.address) as channel:
        stub: exchange_pb2_grpc.ExchangeServiceAsyncStub = exchange_pb2_grpc.ExchangeServiceStub(
            channel
        )
        await _until_risk_approves(stub)
        await asyncio.sleep(SETTLE_SECONDS)
        pids = program_pids(supervisord_pid)
        idle = {name: rss_bytes(pid) / MIB for name, pid in pids.items()}

        checker = health_pb2_grpc.HealthStub(channel)
        check = health_pb2.HealthCheckRequest()
        health = await _latencies(lambda: checker.Check(check), ROUND_TRIPS)
        direct = await _latencies(lambda: stub.SubmitOrder(_order_request()), ROUND_TRIPS)
        connection = await HttpConnection.open(port)
        through_gateway = await _latencies(
            lambda: connection.request(_http_order(port)),
            ROUND_TRIPS,
        )
        connection.close()
        rss = _PeakRss(pids)
        throughput = await _order_load(port, rss)

    bare = "grpc.health Check, same process"
    rows = [
        Row(SECTION, "order round trip via gRPC p50", "ms", _p(direct, 50), _p(health, 50), bare),
        Row(SECTION, "order round trip via gRPC p99", "ms", _p(direct, 99), _p(health, 99), bare),
        Row(SECTION, "order round trip via gateway p50", "ms", _p(through_gateway, 50),
            _p(direct, 50), "via gRPC"),
        Row(SECTION, "order round trip via gateway p99", "ms", _p(through_gateway, 99),
            _p(direct, 99), "via gRPC"),
        Row(SECTION, f"orders/s through the gateway ({LOAD_CLIENTS} clients)", "orders/s",
            throughput),
    ]  # fmt: skip
    for name in PROGRAMS:
        rows.append(Row(SECTION, f"{name}: idle RSS in the stack", "MiB", idle[name]))
        rows.append(
            Row(
                SECTION,
                f"{name}: peak RSS under the order load",
                "MiB",
                rss.peak[name] / MIB,
                target=f"<= {_budget(config, name)} (budget)",
            )
        )
    return rows


def _budget(config: Config, name: str) -> int:
    if name in SERVICE_NAMES:
        return config.service(name).memory_budget_mib
    return config.gateway.memory_budget_mib


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-stack-") as directory:
        environment = isolated_config(
            Path(directory),
            GATEWAY__AUTH__TOKENS=f"bench:{digest(TOKEN)}:read+trade",
            GATEWAY__LIMITS__RATE_PER_SECOND="1000000",
            GATEWAY__LIMITS__BURST="1000000",
            # The default order-rate limits (10/s, 300/min) protect a live account.
            RISK__LIMITS__MAX_ORDERS_PER_SECOND="0",
            RISK__LIMITS__MAX_ORDERS_PER_MINUTE="0",
        )
        config = load_config(environment)
        stack = subprocess.Popen(  # noqa: ASYNC220 - supervisord must outlive any await
            [sys.executable, "-m", "common.stack"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for name in SERVICE_NAMES:
                await wait_until_serving(config.service(name).address, within=READY_WITHIN)
            await wait_for_http(f"http://127.0.0.1:{config.gateway.port}/openapi.json")
            return await _measure(config, stack.pid)
        finally:
            # SIGTERM lets supervisord stop its programs; SIGKILL would orphan them.
            stack.send_signal(signal.SIGTERM)
            stack.wait(timeout=60)


if __name__ == "__main__":  # `python -m bench.stack`: this section alone
    from bench.report import table

    print(table(asyncio.run(run())))
