"""Support for tests and benchmarks: free ports, isolated configs, waiting for SERVING,
and scripted peers served over real gRPC.

Nothing here is used by the services themselves. Every helper keeps a run off the
default ports and out of var/: a config written by `isolated_config` puts the var
directory in a temporary folder and every process on a port the OS just handed out.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.config import SERVICE_NAMES
from common.interceptors import ServiceInterceptor

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
        lines += [f"[{name}]", f'address = "127.0.0.1:{free_port()}"']
    lines += ["[gateway]", f"port = {free_port()}"]
    path = directory / "edgequant.toml"
    path.write_text("\n".join(lines) + "\n")
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("EDGEQUANT_")
    }
    environment["EDGEQUANT_CONFIG"] = str(path)
    environment.update({f"EDGEQUANT_{key}": value for key, value in overrides.items()})
    return environment


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


@asynccontextmanager
async def serving(
    servicer: Any, add_to_server: Callable[[Any, grpc.aio.Server], None]
) -> AsyncIterator[str]:
    """Serves one servicer on a free loopback port through the real interceptor; yields
    its address. For a service's tests that need a scripted peer (a RiskService that
    denies, an ExchangeService that streams given executions)."""
    server = grpc.aio.server(interceptors=[ServiceInterceptor()])
    add_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
