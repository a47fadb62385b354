"""Support for tests and benchmarks: free ports, isolated configs, waiting for SERVING
(and for any condition), and scripted peers served over real gRPC.

Nothing here is used by the services themselves. Every helper keeps a run off the
default ports and out of var/: a config written by `isolated_config` puts the var
directory in a temporary folder and every process on a port the OS just handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from supervisor.xmlrpc import SupervisorTransport

from common.channels import ping_policy_options
from common.config import DEFAULT_CONFIG, SERVICE_NAMES, Config, GrpcSettings, load_config
from common.interceptors import ServiceInterceptor
from common.service import Runtime

SERVING = health_pb2.HealthCheckResponse.SERVING


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_config(directory: Path, **overrides: str) -> dict[str, str]:
    """Writes a config for a stack in `directory` on free ports; returns its environment.

    `overrides` are extra EDGEQUANT_* variables (name without the prefix), e.g.
    `RISK__GRACE_SECONDS="0.5"`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f'var_dir = "{directory / "var"}"']
    for name in SERVICE_NAMES:
        lines += [
            f"[{name}]",
            f'address = "127.0.0.1:{free_port()}"',
            f'metrics_address = "127.0.0.1:{free_port()}"',
        ]
    lines += ["[gateway]", f"port = {free_port()}"]
    # Never the developer's configs/tokens.toml: a test stack has its own tokens file.
    lines += ["[gateway.auth]", f'tokens_file = "{directory / "tokens.toml"}"']
    path = directory / "edgequant.toml"
    path.write_text("\n".join(lines) + "\n")
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("EDGEQUANT_")
    }
    environment["EDGEQUANT_CONFIG"] = str(path)
    environment.update({f"EDGEQUANT_{key}": value for key, value in overrides.items()})
    return environment


def settings_runtime(config: Config, name: str) -> Runtime:
    """A Runtime carrying only `config` and service `name`'s settings: what a service's
    `load_settings(runtime)` reads. It has no engine, sessions or memory guard (None), so
    nothing but a settings loader may be given it."""
    return Runtime(name, config, config.service(name), None, None, None)  # type: ignore[arg-type]


async def health_status(address: str, service: str = "", deadline: float = 1.0) -> int | None:
    """The grpc.health.v1 status at `address`, or None when nothing answers."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=deadline
            )
        except grpc.aio.AioRpcError:
            return None
        return int(response.status)


async def wait_until_serving(address: str, within: float = 30.0) -> float:
    """Polls health until SERVING; returns the seconds it took. Raises TimeoutError."""
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        if await health_status(address, deadline=0.5) == SERVING:
            return time.perf_counter() - started
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{address} did not report SERVING within {within} s")


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    within: float = 30.0,
    what: str = "condition",
    interval: float = 0.01,
) -> None:
    """Polls `check` (a plain or an async predicate) until it holds; fails the test
    naming `what` when it still does not after `within` seconds. For state with no event
    to wait on (a process table, a row another task writes); a subscriber is waited for
    through its stream, never by polling or sleeping."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        outcome = check()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(interval)


async def wait_until_healthy(url: str, within: float = 30.0) -> None:
    """Polls an HTTP health URL (the gateway's /healthz) until it answers 200."""

    async def healthy() -> bool:
        with contextlib.suppress(httpx.TransportError):
            return (await client.get(url)).status_code == 200
        return False

    async with httpx.AsyncClient(timeout=2) as client:
        await eventually(healthy, within, what=f"{url} answering 200", interval=0.1)


@asynccontextmanager
async def serving(
    servicer: Any,
    add_to_server: Callable[[Any, grpc.aio.Server], None],
    grpc_settings: GrpcSettings | None = None,
) -> AsyncIterator[str]:
    """Serves one servicer on a free loopback port through the real interceptor; yields
    its address. For a service's tests that need a scripted peer (a RiskService that
    denies, an ExchangeService that streams given executions). It permits the pings of
    `grpc_settings` (default.toml's `[grpc]` unless given), as every service does."""
    if grpc_settings is None:
        grpc_settings = load_config({"EDGEQUANT_CONFIG": str(DEFAULT_CONFIG)}).grpc
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor()], options=ping_policy_options(grpc_settings)
    )
    add_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@contextlib.contextmanager
def supervisor_rpc(socket_path: Path) -> Iterator[Any]:
    """supervisord's XML-RPC interface (what supervisorctl uses) on its Unix socket, for
    one block: the connection is closed after it (no ResourceWarning). One per thread."""
    transport = SupervisorTransport(None, None, f"unix://{socket_path}")
    try:
        yield xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor
    finally:
        transport.close()


@dataclass(frozen=True)
class Stack:
    """A stack started by `running_stack`: its config, environment and supervisord."""

    config: Config
    environment: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def gateway_url(self) -> str:
        return f"http://{self.config.gateway.host}:{self.config.gateway.port}"

    def programs(self) -> dict[str, ProgramState]:
        """Each supervisord program's pid and start time (a restart changes both)."""
        with supervisor_rpc(self.config.var_dir / "supervisor.sock") as supervisor:
            infos: list[dict[str, Any]] = supervisor.getAllProcessInfo()
        return {
            info["name"]: ProgramState(
                pid=int(info["pid"]), started=int(info["start"]), state=str(info["statename"])
            )
            for info in infos
        }


@dataclass(frozen=True)
class ProgramState:
    pid: int
    started: int
    state: str


@asynccontextmanager
async def running_stack(
    environment: dict[str, str], within: float = 90.0, output: IO[bytes] | None = None
) -> AsyncIterator[Stack]:
    """`python -m common.stack` (what `make run` runs) in `environment` (from
    `isolated_config`) until every service and the gateway answer; stopped with SIGTERM,
    which lets supervisord stop its programs (a SIGKILL would orphan them)."""
    config = load_config(environment)
    # Popen returns at once: the stack runs beside the event loop, not in it.
    process = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "common.stack"],
        env=environment,
        stdout=output or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        for name in SERVICE_NAMES:
            await wait_until_serving(config.service(name).address, within=within)
        stack = Stack(config=config, environment=environment, process=process)
        await wait_until_healthy(f"{stack.gateway_url}/healthz", within)
        yield stack
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# Debian's postgresql package puts the server's programs here (not on PATH).
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# The unprivileged user the package creates: PostgreSQL refuses to run as root.
POSTGRES_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory with initdb and pg_ctl, or None."""
    candidates = [
        path
        for path in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/"))
        if (path / "initdb").exists() and (path / "pg_ctl").exists()
    ]
    candidates.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throwaway PostgreSQL server: initdb and pg_ctl in a temp dir, on a free port of
    loopback, trust authentication. Durability off (fsync, synchronous commit) since the
    data dies with it, unless `durable` (PostgreSQL's defaults, for measurements).

    As root, its programs run as the package's `postgres` user (runuser); otherwise as
    the current user.
    """

    def __init__(self, bin_dir: Path, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="edgequant-pg-"))
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam(POSTGRES_USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            self._as_postgres = ["runuser", "-u", POSTGRES_USER, "--"]
        self._databases = 0

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def _run(self, program: str, *arguments: str) -> None:
        command = [*self._as_postgres, str(self.bin_dir / program), *arguments]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}".strip())

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
            " -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.directory / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str = "") -> str:
        """A new empty database; returns its SQLAlchemy URL (asyncpg)."""
        self._databases += 1
        name = name or f"db{self._databases}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def stack_overrides(self) -> dict[str, str]:
        """`isolated_config` overrides that give every service a new database of its own."""
        return {
            f"{name.upper()}__DATABASE_URL": self.create_database(f"{name}{self._databases + 1}")
            for name in SERVICE_NAMES
        }


def postgres_unavailable_reason() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None when it can."""
    if postgres_bin_dir() is None:
        return (
            f"PostgreSQL server binaries not found ({POSTGRES_BIN_GLOB}/initdb): "
            "apt-get install postgresql (.ci/run does)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            return f"running as root and no '{POSTGRES_USER}' user to run PostgreSQL as"
    return None


def reason_registry_problems(registry: type[StrEnum], service_dir: Path) -> list[str]:
    """What is wrong with a service's reason registry (services/<name>/reasons.py): a
    member not spelled as its name, one without the comment that says when it is given,
    one that repeats common.reasons, or one the service never gives. (That no reason is
    a literal elsewhere is an architecture rule: tests/architecture.)"""
    from common.reasons import CommonReason  # noqa: PLC0415 - test support only

    lines = (service_dir / "reasons.py").read_text().splitlines()
    given = "\n".join(
        path.read_text()
        for path in service_dir.rglob("*.py")
        if path.name != "reasons.py" and "migrations" not in path.parts
    )
    problems = []
    for reason in registry:
        if reason.value != reason.name:
            problems.append(f"{reason.name} is spelled {reason.value!r}")
        line = next(
            n for n, text in enumerate(lines) if text.strip().startswith(f"{reason.name} =")
        )
        if not lines[line - 1].strip().startswith("#"):
            problems.append(f"{reason.name} has no comment")
        if reason.name in CommonReason.__members__:
            problems.append(f"{reason.name} repeats common.reasons.CommonReason")
        if f".{reason.name}" not in given:
            problems.append(f"{reason.name} is never given")
    return problems
