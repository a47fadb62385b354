"""The whole stack as `make run` runs it (supervisord, paper venue, real risk hop): each
process's RSS idle and under an order load, and an order's round trip straight to gRPC
and through the gateway.

The round trips are sequential market orders (exchange -> RiskService.CheckOrder ->
paper venue -> SQLite outbox; portfolio and risk follow the executions meanwhile). The
baseline is grpc.health.v1 Check on the exchange's own port in the same run: one bare
gRPC round trip to the same process.

Every load buys and sells in turn (the position stays flat) on an ample paper account
(bench.section.ample_account), from an inventory bought and checked before measuring
(bench.section.prepare_flat_account), so it never depends on the speed of the machine.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.gateway import TOKEN
from bench.http import HttpConnection, raw_request
from bench.report import Row, percentile
from bench.section import ample_account, prepare_flat_account, sized
from common.config import SERVICE_NAMES, Config
from common.memory import MIB, rss_bytes
from common.stack import PROGRAMS
from common.testing import Stack, isolated_config, running_stack
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.auth import digest

SECTION = "stack"
ROUND_TRIPS = sized(300, 20)
LOAD_CLIENTS = 8
LOAD_SECONDS = sized(5.0, 1.0)
SETTLE_SECONDS = sized(3.0, 0.5)
READY_WITHIN = 60.0
# ~6 USDT, just above the venue's minimum notional; buys and sells in turn, sold from an
# inventory so a sell never waits for risk to see the buy before it.
QUANTITY = "0.0001"
INVENTORY = "0.05"
_sequence = itertools.count()
# Every Python process of the stack writes each import to stderr (its supervisord log):
# what an idle service has loaded, read from outside, without a hook in the service.
IMPORT_PROFILE = {"PYTHONPROFILEIMPORTTIME": "1"}
# What no idle process of the stack may hold: the engines and their arrays (backtest
# workers and dataset imports load them in their own processes), ccxt without a ccxt
# venue, alembic (migrations run in a child), and for the gateway the database layer.
NOT_WHEN_IDLE = ("numpy", "pandas", "numba", "hftbacktest", "ccxt", "alembic", "mako")
GATEWAY_NOT_WHEN_IDLE = (*NOT_WHEN_IDLE, "sqlalchemy", "aiosqlite")


def imported_modules(log: Path) -> set[str]:
    """Top-level packages a process of the stack imported, from its log under
    IMPORT_PROFILE (`-X importtime` lines: "import time: self | cumulative | name")."""
    modules = set()
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name and not name.startswith("package"):
                modules.add(name.split(".")[0])
    return modules


def unneeded_imports(config: Config) -> dict[str, list[str]]:
    """Per program of a stack run with IMPORT_PROFILE, what it holds of NOT_WHEN_IDLE."""
    found = {}
    for name in PROGRAMS:
        banned = GATEWAY_NOT_WHEN_IDLE if name == "gateway" else NOT_WHEN_IDLE
        modules = imported_modules(config.log_dir / f"{name}.log")
        found[name] = sorted(module for module in banned if module in modules)
    return found


def _side(number: int) -> str:
    return "SIDE_BUY" if number % 2 == 0 else "SIDE_SELL"


def _http_order(port: int) -> bytes:
    number = next(_sequence)
    order = {
        "venue": "paper",
        "symbol": "BTC/USDT",
        "side": _side(number),
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
        side=common_pb2.Side.Value(_side(number)),
        type=common_pb2.ORDER_TYPE_MARKET,
        quantity=QUANTITY,
        client_order_id=f"grpc-{number}",
    )


async def _latencies(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


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


async def _measure(stack: Stack) -> list[Row]:
    config = stack.config
    port = config.gateway.port
    async with grpc.aio.insecure_channel(config.exchange.address) as channel:
        stub: exchange_pb2_grpc.ExchangeServiceAsyncStub = exchange_pb2_grpc.ExchangeServiceStub(
            channel
        )
        await prepare_flat_account(config, QUANTITY, INVENTORY, LOAD_CLIENTS, READY_WITHIN)
        await asyncio.sleep(SETTLE_SECONDS)
        pids = {name: program.pid for name, program in stack.programs().items()}
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

    rows = []
    for way, latencies, baseline, baseline_name in (
        ("gRPC", direct, health, "grpc.health Check, same process"),
        ("gateway", through_gateway, direct, "via gRPC"),
    ):
        for q in (50, 99):
            rows.append(
                Row(SECTION, f"order round trip via {way} p{q}", "ms", percentile(latencies, q),
                    percentile(baseline, q), baseline_name)
            )  # fmt: skip
    rows.append(
        Row(SECTION, f"orders/s through the gateway ({LOAD_CLIENTS} clients)", "orders/s",
            throughput)
    )  # fmt: skip
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
            **ample_account(),
            # The default order-rate limits (10/s, 300/min) protect a live account.
            RISK__LIMITS__MAX_ORDERS_PER_SECOND="0",
            RISK__LIMITS__MAX_ORDERS_PER_MINUTE="0",
        )
        async with running_stack(environment, within=READY_WITHIN) as stack:
            return await _measure(stack)


if __name__ == "__main__":  # `python -m bench.stack`: this section alone
    from bench.report import table

    print(table(asyncio.run(run())))
