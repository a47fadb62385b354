"""The memory floor of the stack's design: what supervisord, memmon and as many bare
gRPC processes as the stack has cost, each holding only what every service must keep
(grpcio with grpc.health, SQLAlchemy's asyncio engine on aiosqlite with its connection
open). EdgeQuant's idle stack is compared with it, in PSS, in the same run.

And what the floor is made of, each part measured alone: a Python interpreter, the same
with grpc.aio + health serving, the same with SQLAlchemy async too (USS: what only that
process holds; the libraries they share with the rest show in PSS).

The order round trip has a floor too (`round_trip_floor`): what any order path of this
design pays with nothing of ours in it. A bare grpc.aio server whose one unary method
commits a row to SQLite (WAL, synchronous=NORMAL, as the services open it), makes a
unary call to a second bare server that answers at once, commits again and answers:
SubmitOrder's two gRPC hops and two transactions, without validation, risk rules,
SQLAlchemy, the paper venue, the streams or the interceptor.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from supervisor.xmlrpc import SupervisorTransport

from bench.section import timed
from common.config import PROJECT_ROOT
from common.memory import Footprint, footprint
from common.testing import free_port, wait_until_serving

# argv: address, and "db" for the SQLAlchemy part (database path after it).
BARE_PROCESS = """
import asyncio, sys
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

async def main() -> None:
    if len(sys.argv) > 2:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine
        engine = create_async_engine(f"sqlite+aiosqlite:///{sys.argv[3]}")
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(sys.argv[1])
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()

asyncio.run(main())
"""
# argv: port, then the peer's port and the database path (the order-like server), or
# nothing more (the peer, which answers at once).
ROUND_TRIP_PROCESS = """
import asyncio, sqlite3, sys
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

async def main() -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if len(sys.argv) > 2:
        database = sqlite3.connect(sys.argv[3], isolation_level=None)
        database.execute("PRAGMA journal_mode=WAL")
        database.execute("PRAGMA synchronous=NORMAL")
        database.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, state TEXT)")
        peer = grpc.aio.insecure_channel(f"127.0.0.1:{sys.argv[2]}").unary_unary("/floor.Peer/Call")
        count = 0

        def commit(statement: str, *values: str) -> None:
            database.execute("BEGIN")
            database.execute(statement, values)
            database.execute("COMMIT")

        async def call(request: bytes, context: object) -> bytes:
            nonlocal count
            count += 1
            commit("INSERT INTO orders VALUES (?, 'new')", str(count))
            await peer(request, timeout=5)
            commit("UPDATE orders SET state = 'filled' WHERE id = ?", str(count))
            return request
    else:
        async def call(request: bytes, context: object) -> bytes:
            return request
    handler = grpc.unary_unary_rpc_method_handler(call)
    name = "floor.Orders" if len(sys.argv) > 2 else "floor.Peer"
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(name, {"Call": handler})])
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()

asyncio.run(main())
"""
# About an order's request: what the floor's calls carry each way.
ROUND_TRIP_MESSAGE = bytes(80)
# Calls before measuring: connections, the database file and its WAL, the code paths.
WARM_UP_CALLS = 50
IDLE_PYTHON = "import time\nwhile True:\n    time.sleep(3600)\n"

SUPERVISORD_CONF = """
[supervisord]
nodaemon=true
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}
[unix_http_server]
file={dir}/supervisor.sock
chmod=0700
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
{programs}
[eventlistener:memmon]
command={python} -m common.memmon {memmon_args}
directory={root}
events=TICK_5
stdout_logfile={dir}/memmon.log
stderr_logfile={dir}/memmon.log
"""
PROGRAM = """
[program:bare{number}]
command={python} {script} 127.0.0.1:{port} db {dir}/bare{number}.sqlite
environment=MALLOC_ARENA_MAX="2"
stdout_logfile={dir}/bare{number}.log
redirect_stderr=true
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _bare_script(directory: Path) -> Path:
    return _write(directory / "bare.py", BARE_PROCESS)


@dataclass(frozen=True)
class Floor:
    supervisord: Footprint
    memmon: Footprint
    bare: list[Footprint]

    @property
    def pss(self) -> int:
        return self.supervisord.pss + self.memmon.pss + sum(f.pss for f in self.bare)


def _program_pids(directory: Path) -> dict[str, int]:
    proxy = xmlrpc.client.ServerProxy(
        "http://127.0.0.1",
        transport=SupervisorTransport(None, None, f"unix://{directory / 'supervisor.sock'}"),
    )
    infos: list[dict[str, Any]] = proxy.supervisor.getAllProcessInfo()  # type: ignore[assignment]
    return {str(info["name"]): int(info["pid"]) for info in infos}


async def measure_floor(directory: Path, processes: int, settle: float) -> Floor:
    """supervisord + memmon + `processes` bare gRPC + SQLAlchemy processes, after `settle`
    seconds of serving."""
    script = _bare_script(directory)
    python = sys.executable
    ports = [free_port() for _ in range(processes)]
    programs = "".join(
        PROGRAM.format(number=n, python=python, script=script, port=port, dir=directory)
        for n, port in enumerate(ports)
    )
    memmon_args = " ".join(f"-p bare{n}=96MB" for n in range(processes))
    conf = _write(
        directory / "supervisord.conf",
        SUPERVISORD_CONF.format(
            dir=directory, programs=programs, python=python, root=PROJECT_ROOT,
            memmon_args=memmon_args,
        ),
    )  # fmt: skip
    supervisord = subprocess.Popen(  # noqa: ASYNC220 - runs beside the loop
        [python, "-m", "supervisor.supervisord", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in ports:
            await wait_until_serving(f"127.0.0.1:{port}", within=60)
        await asyncio.sleep(settle)
        pids = _program_pids(directory)
        return Floor(
            supervisord=footprint(supervisord.pid),
            memmon=footprint(pids["memmon"]),
            bare=[footprint(pids[f"bare{n}"]) for n in range(processes)],
        )
    finally:
        supervisord.terminate()
        supervisord.wait(timeout=60)


async def measure_alone(command: list[str], ready: str | None, settle: float) -> Footprint:
    """One process started alone; `ready` is the gRPC address it serves on, if any."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if ready is not None:
            await wait_until_serving(ready, within=60)
        await asyncio.sleep(settle)
        return footprint(process.pid)
    finally:
        process.terminate()
        await process.wait()


async def floor_parts(directory: Path, settle: float) -> dict[str, Footprint]:
    """What each layer of a floor process costs, each measured alone."""
    script = _bare_script(directory)
    python = sys.executable
    grpc_address = f"127.0.0.1:{free_port()}"
    db_address = f"127.0.0.1:{free_port()}"
    return {
        "Python alone": await measure_alone([python, "-c", IDLE_PYTHON], None, settle),
        "Python + grpc.aio + health": await measure_alone(
            [python, str(script), grpc_address], grpc_address, settle
        ),
        "Python + grpc.aio + health + SQLAlchemy async": await measure_alone(
            [python, str(script), db_address, "db", str(directory / "alone.sqlite")],
            db_address,
            settle,
        ),
    }


@dataclass(frozen=True)
class RoundTrips:
    """Milliseconds of each call, made one after another."""

    health: list[float]
    orders: list[float]


async def round_trip_floor(directory: Path, count: int) -> RoundTrips:
    """`count` health Checks, then `count` order-like calls, to the floor's order server
    (as bench.stack measures the stack's, in the same order)."""
    script = _write(directory / "round_trip.py", ROUND_TRIP_PROCESS)
    peer_port, order_port = free_port(), free_port()
    address = f"127.0.0.1:{order_port}"
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, str(script), *arguments)
        for arguments in (
            [str(peer_port)],
            [str(order_port), str(peer_port), str(directory / "orders.sqlite")],
        )
    ]
    try:
        await wait_until_serving(f"127.0.0.1:{peer_port}", within=60)
        await wait_until_serving(address, within=60)
        async with grpc.aio.insecure_channel(address) as channel:
            order: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/floor.Orders/Call"
            )
            checker = health_pb2_grpc.HealthStub(channel)
            check = health_pb2.HealthCheckRequest()
            await timed(lambda: order(ROUND_TRIP_MESSAGE), WARM_UP_CALLS)
            health = await timed(lambda: checker.Check(check), count)
            orders = await timed(lambda: order(ROUND_TRIP_MESSAGE), count)
        return RoundTrips(health, orders)
    finally:
        for process in processes:
            process.terminate()
            await process.wait()
