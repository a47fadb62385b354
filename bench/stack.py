"""The whole stack as `make run` runs it (supervisord, paper venue, real risk hop): what
each process costs in memory (RSS, PSS, USS from smaps_rollup) idle after a minute and at
peak under an order load, the stack's PSS beside its floor (bench.floor: supervisord,
memmon and as many bare grpc.aio + SQLAlchemy processes), what an idle process has
imported that it does not need and the CPU it spends idle, an order's round trip
straight to gRPC and through the gateway, and the CPU each process spends per order.

PSS is what the device pays: a shared library's pages split among the processes that
map them. RSS counts them in full in each (budgets stay RSS: memmon enforces them).

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
import compileall
import itertools
import json
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.floor import Floor, RoundTrips, floor_parts, measure_floor, round_trip_floor
from bench.gateway import TOKEN
from bench.http import HttpConnection, raw_request
from bench.report import Row, percentile
from bench.section import ample_account, cpu_seconds, prepare_flat_account, sized, timed
from common.config import PROJECT_ROOT, SERVICE_NAMES, Config
from common.memory import MIB, Footprint, footprint
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
# Idle is measured this long after the stack serves (lazy imports, timers, caches).
IDLE_AFTER_SECONDS = sized(60.0, 2.0)
SAMPLE_EVERY_SECONDS = 0.25
# CPU per order: this many market orders straight to gRPC from LOAD_CLIENTS clients, then
# CPU_SETTLE_SECONDS for the portfolio and risk to follow the last executions.
CPU_ORDERS = sized(1000, 40)
CPU_SETTLE_SECONDS = sized(2.0, 0.5)
IDLE_CPU_SECONDS = sized(20.0, 1.0)
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
# venue, alembic (migrations run in a child); for the gRPC services prometheus_client
# (common.metrics writes the text format itself) and the HTTP and tool modules it
# brought (urllib.request's http.client shows as http); for the gateway the database
# and prometheus_client (it writes its metrics with common.metrics too).
NOT_WHEN_IDLE = ("numpy", "pandas", "numba", "hftbacktest", "ccxt", "alembic", "mako")
SERVICE_NOT_WHEN_IDLE = (
    *NOT_WHEN_IDLE,
    *("prometheus_client", "http", "html", "wsgiref", "socketserver", "mimetypes"),
    *("timeit", "mmap", "resource"),
)
GATEWAY_NOT_WHEN_IDLE = (*NOT_WHEN_IDLE, "prometheus_client", "sqlalchemy", "aiosqlite")
# What a service imports on the first request that needs it, never at start: statistics
# (with fractions) for a parametric or Monte Carlo VaR, multiprocessing for a backtest job
# or a dataset import, the exchange's contract for a dataset from the exchange,
# candle_stream for StreamCandles, performance and imports for GetPerformance and
# ImportFills, secrets (with hmac) for a runner, the backtest's contract for a runner made
# from a backtest result.
LOADED_ON_FIRST_USE = {
    "exchange": ("services.exchange.candle_stream",),
    "portfolio": ("services.portfolio.performance", "services.portfolio.imports"),
    "risk": ("statistics", "fractions"),
    "backtest": (
        *("multiprocessing", "concurrent.futures.process"),
        *("edgequant.exchange.v1.exchange_pb2", "edgequant.exchange.v1.exchange_pb2_grpc"),
    ),
    "strategy": (
        *("secrets", "hmac"),
        *("edgequant.backtest.v1.backtest_pb2", "edgequant.backtest.v1.backtest_pb2_grpc"),
    ),
}
# What the README's install compiles (the device runs with PYTHONDONTWRITEBYTECODE).
PROJECT_PACKAGES = ("common", "gateway", "services", "strategies", "protos")


def imported_modules(log: Path) -> set[str]:
    """Modules a process of the stack imported (dotted names, top-level packages among
    them), from its log under IMPORT_PROFILE (`-X importtime` lines: "import time: self |
    cumulative | name")."""
    modules = set()
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name and not name.startswith("package"):
                modules.add(name)
    return modules


def unneeded_imports(config: Config) -> dict[str, list[str]]:
    """Per program of a stack run with IMPORT_PROFILE, what it holds of what it must not
    (SERVICE_NOT_WHEN_IDLE, GATEWAY_NOT_WHEN_IDLE, LOADED_ON_FIRST_USE)."""
    found = {}
    for name in PROGRAMS:
        banned = GATEWAY_NOT_WHEN_IDLE if name == "gateway" else SERVICE_NOT_WHEN_IDLE
        banned = (*banned, *LOADED_ON_FIRST_USE.get(name, ()))
        # Importing "a.b" logs "a" too: a banned package shows whichever of its modules loaded.
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


def order_request() -> exchange_pb2.SubmitOrderRequest:
    """A market order of QUANTITY BTC, buying and selling in turn (the position stays flat)."""
    number = next(_sequence)
    return exchange_pb2.SubmitOrderRequest(
        venue="paper",
        symbol="BTC/USDT",
        side=common_pb2.Side.Value(_side(number)),
        type=common_pb2.ORDER_TYPE_MARKET,
        quantity=QUANTITY,
        client_order_id=f"grpc-{number}",
    )


class _Peak:
    """The highest RSS, PSS and USS each process reached while sampled."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {name: Footprint(0, 0, 0) for name in pids}

    def sample(self) -> None:
        for name, pid in self.pids.items():
            now, high = footprint(pid), self.peak[name]
            self.peak[name] = Footprint(
                max(now.rss, high.rss), max(now.pss, high.pss), max(now.uss, high.uss)
            )


async def _cpu_per_order(
    stub: exchange_pb2_grpc.ExchangeServiceAsyncStub, pids: dict[str, int]
) -> dict[str, float]:
    """CPU ms each process spends per order over a steady load of CPU_ORDERS orders
    (the executions' streams to the portfolio and risk, and the gateway idle, included)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    remaining = CPU_ORDERS

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await stub.SubmitOrder(order_request())

    await asyncio.gather(*(client() for _ in range(LOAD_CLIENTS)))
    await asyncio.sleep(CPU_SETTLE_SECONDS)
    return {
        name: (cpu_seconds(pid) - before[name]) * 1000 / CPU_ORDERS for name, pid in pids.items()
    }


async def _idle_cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU ms each process spends per second with nothing asked of it (the paper replay,
    the market data streams, the periodic reads): what the device pays around the clock,
    and part of every CPU-per-order figure, taken over a window of seconds."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    await asyncio.sleep(IDLE_CPU_SECONDS)
    return {
        name: (cpu_seconds(pid) - before[name]) * 1000 / IDLE_CPU_SECONDS
        for name, pid in pids.items()
    }


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (the backtest service's warm workers)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


async def _order_load(port: int, peak: _Peak) -> float:
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
            peak.sample()
            await asyncio.sleep(SAMPLE_EVERY_SECONDS)

    started = time.perf_counter()
    await asyncio.gather(sampler(), *(client(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    peak.sample()
    return done / elapsed


async def _measure(stack: Stack, ready_at: float) -> list[Row]:
    config = stack.config
    port = config.gateway.port
    async with grpc.aio.insecure_channel(config.exchange.address) as channel:
        stub: exchange_pb2_grpc.ExchangeServiceAsyncStub = exchange_pb2_grpc.ExchangeServiceStub(
            channel
        )
        await prepare_flat_account(config, QUANTITY, INVENTORY, LOAD_CLIENTS, READY_WITHIN)
        await asyncio.sleep(max(SETTLE_SECONDS, ready_at + IDLE_AFTER_SECONDS - time.monotonic()))
        pids = {name: program.pid for name, program in stack.programs().items()}
        pids["supervisord"] = stack.process.pid
        idle = {name: footprint(pid) for name, pid in pids.items()}
        workers = [footprint(pid) for pid in _children(pids["backtest"])]
        unneeded = unneeded_imports(config)
        idle_cpu = await _idle_cpu(pids)

        checker = health_pb2_grpc.HealthStub(channel)
        check = health_pb2.HealthCheckRequest()
        health = await timed(lambda: checker.Check(check), ROUND_TRIPS)
        direct = await timed(lambda: stub.SubmitOrder(order_request()), ROUND_TRIPS)
        connection = await HttpConnection.open(port)
        through_gateway = await timed(
            lambda: connection.request(_http_order(port)),
            ROUND_TRIPS,
        )
        connection.close()
        peak = _Peak(pids)
        throughput = await _order_load(port, peak)
        cpu = await _cpu_per_order(stub, pids)

    rows = []
    health_p50 = percentile(health, 50)
    for way, latencies, baseline, baseline_name in (
        ("gRPC", direct, health, "grpc.health Check, same process"),
        ("gateway", through_gateway, direct, "via gRPC"),
    ):
        for q in (50, 99):
            target = f"<= {4 * health_p50:.2f} (4x health)" if (way, q) == ("gRPC", 50) else ""
            rows.append(
                Row(SECTION, _round_trip(way, q), "ms", percentile(latencies, q),
                    percentile(baseline, q), baseline_name, target)
            )  # fmt: skip
    rows.append(
        Row(SECTION, f"orders/s through the gateway ({LOAD_CLIENTS} clients)", "orders/s",
            throughput)
    )  # fmt: skip
    for name, milliseconds in cpu.items():
        rows.append(
            Row(SECTION, f"{name}: CPU per order ({CPU_ORDERS} orders, {LOAD_CLIENTS} clients)",
                "ms", milliseconds)
        )  # fmt: skip
    rows.append(Row(SECTION, "stack: CPU per order, all processes", "ms", sum(cpu.values())))
    for name, milliseconds in idle_cpu.items():
        rows.append(Row(SECTION, f"{name}: CPU when idle", "ms/s", milliseconds))
    rows.append(Row(SECTION, "stack: CPU when idle, all processes", "ms/s", sum(idle_cpu.values())))
    for name in (*PROGRAMS, "memmon", "supervisord"):
        for kind in ("rss", "pss", "uss"):
            rows.append(
                Row(SECTION, f"{name}: idle {kind.upper()}", "MiB", getattr(idle[name], kind) / MIB)
            )
        for kind in ("rss", "pss", "uss"):
            target = f"<= {_soft_limit(config, name):.0f} (soft limit)" if kind == "rss" else ""
            value = getattr(peak.peak[name], kind) / MIB
            rows.append(Row(SECTION, f"{name}: peak {kind.upper()} under the order load", "MiB",
                            value, target=target if name in PROGRAMS else ""))  # fmt: skip
    for name in PROGRAMS:
        found = unneeded[name]
        listed = f" ({', '.join(found)})" if found else ""
        rows.append(
            Row(SECTION, f"{name}: unneeded packages imported when idle{listed}", "packages",
                len(found), target="0")
        )  # fmt: skip
    rows.append(
        Row(SECTION, "backtest: warm workers when idle (measured apart)", "processes",
            len(workers))
    )  # fmt: skip
    if workers:
        rows.append(
            Row(SECTION, "backtest: warm workers' PSS when idle", "MiB",
                sum(worker.pss for worker in workers) / MIB)
        )  # fmt: skip
    return rows


def _floor_rows(idle_pss: float, floor: Floor, parts: dict[str, Footprint]) -> list[Row]:
    name = f"floor: supervisord, memmon, {len(floor.bare)} bare grpc.aio + SQLAlchemy"
    rows = [
        Row(SECTION, "stack: idle PSS, all processes (supervisord and memmon included)",
            "MiB", idle_pss, floor.pss / MIB, name, f"<= {floor.pss / MIB + 15:.0f} (floor + 15)"),
        Row(SECTION, "floor: supervisord PSS", "MiB", floor.supervisord.pss / MIB),
        Row(SECTION, "floor: memmon PSS", "MiB", floor.memmon.pss / MIB),
        Row(SECTION, "floor: one bare grpc.aio + SQLAlchemy process, PSS in the floor", "MiB",
            floor.bare[0].pss / MIB),
    ]  # fmt: skip
    for part, measured in parts.items():
        for kind in ("rss", "pss", "uss"):
            rows.append(
                Row(SECTION, f"alone: {part}, {kind.upper()}", "MiB", getattr(measured, kind) / MIB)
            )
    return rows


def _round_trip(way: str, q: int) -> str:
    return f"order round trip via {way} p{q}"


def _round_trip_rows(order_p50: float, floor: RoundTrips) -> list[Row]:
    """The stack's order round trip beside the floor of its design (bench.floor)."""
    floor_p50 = percentile(floor.orders, 50)
    return [
        Row(SECTION, "floor: order round trip p50 (bare grpc.aio: commit, unary hop, commit)",
            "ms", floor_p50, percentile(floor.health, 50), "grpc.health Check, same process"),
        Row(SECTION, "order round trip via gRPC p50 beside its floor", "ms", order_p50,
            floor_p50, "floor: commit, unary hop, commit"),
    ]  # fmt: skip


def _soft_limit(config: Config, name: str) -> float:
    if name in SERVICE_NAMES:
        settings = config.service(name)
        return settings.memory_budget_mib * settings.soft_limit_ratio
    return float(config.gateway.memory_budget_mib)  # the gateway has no soft limit


def compile_project() -> None:
    """The project's bytecode, as the install leaves it: without it, a shell with
    PYTHONDONTWRITEBYTECODE (like the unit file) makes every process compile each of our
    modules at every start, holding the compiler's leftovers (0.1-0.7 MiB a service), which
    no floor process pays (its packages came compiled from pip)."""
    for package in PROJECT_PACKAGES:
        compileall.compile_dir(PROJECT_ROOT / package, quiet=1)


async def run() -> list[Row]:
    compile_project()
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-stack-") as directory:
        root = Path(directory)
        environment = isolated_config(
            root / "stack",
            GATEWAY__AUTH__TOKENS=f"bench:{digest(TOKEN)}:read+trade",
            GATEWAY__LIMITS__RATE_PER_SECOND="1000000",
            GATEWAY__LIMITS__BURST="1000000",
            **ample_account(),
            # The default order-rate limits (10/s, 300/min) protect a live account.
            RISK__LIMITS__MAX_ORDERS_PER_SECOND="0",
            RISK__LIMITS__MAX_ORDERS_PER_MINUTE="0",
        )
        environment.update(IMPORT_PROFILE)
        async with running_stack(environment, within=READY_WITHIN) as stack:
            rows = await _measure(stack, time.monotonic())
        idle_pss = sum(row.value for row in rows if row.measure.endswith(": idle PSS"))
        # After the stack has stopped: PSS splits shared pages among whoever maps them.
        floor = await measure_floor(root / "floor", len(PROGRAMS), SETTLE_SECONDS)
        parts = await floor_parts(root / "parts", SETTLE_SECONDS)
        order_p50 = next(row.value for row in rows if row.measure == _round_trip("gRPC", 50))
        round_trips = await round_trip_floor(root / "round-trip-floor", ROUND_TRIPS)
        return rows + _floor_rows(idle_pss, floor, parts) + _round_trip_rows(order_p50, round_trips)


if __name__ == "__main__":  # `python -m bench.stack`: this section alone
    from bench.report import table

    print(table(asyncio.run(run())))
