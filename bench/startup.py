"""Per process: time from exec to SERVING, and idle RSS once serving.

Each process is started alone, three times, in a temp dir on free ports; the median
is reported. The baseline is a bare grpc.aio server with only grpc.health.v1, started
the same way in the same run: the difference is what EdgeQuant's runtime costs.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.http import wait_for_http
from bench.report import Row
from bench.section import sized
from common.config import SERVICE_NAMES, Config, load_config
from common.memory import MIB, rss_bytes
from common.testing import free_port, isolated_config, wait_until_serving

RUNS = sized(3, 1)
SETTLE_SECONDS = sized(2.0, 0.5)
# DESIGN.md's budgets (the exchange's is for the paper venue).
BUDGETS_MIB = {
    "exchange": 64,
    "portfolio": 96,
    "risk": 96,
    "backtest": 128,
    "strategy": 128,
    "gateway": 96,
}

BARE_SERVER = """
import asyncio, sys, grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
async def main():
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(sys.argv[1])
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()
asyncio.run(main())
"""


async def _measure(
    command: list[str], environment: dict[str, str], ready: str
) -> tuple[float, float]:
    """Seconds from exec to ready, and RSS in MiB after settling; `ready` is a gRPC address
    or an http:// URL."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if ready.startswith("http://"):
            await wait_for_http(ready)
        else:
            await wait_until_serving(ready)
        seconds = time.perf_counter() - started
        await asyncio.sleep(SETTLE_SECONDS)
        return seconds, rss_bytes(process.pid) / MIB
    finally:
        process.terminate()
        await process.wait()


def _command(name: str) -> list[str]:
    module = "gateway" if name == "gateway" else f"services.{name}"
    return [sys.executable, "-m", module]


def _ready(name: str, config: Config) -> str:
    if name == "gateway":
        return f"http://127.0.0.1:{config.gateway.port}/healthz"
    return config.service(name).address


async def _median_of_runs(name: str, root: Path) -> tuple[float, float]:
    samples = []
    for run in range(RUNS):
        # Alone, risk has no peers to sync its accounts with: it serves without waiting.
        environment = isolated_config(
            root / f"{name}-{run}", RISK__FEEDS__READY_TIMEOUT_SECONDS="0"
        )
        config = load_config(environment)
        samples.append(await _measure(_command(name), environment, _ready(name, config)))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


async def _bare_baseline() -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        address = f"127.0.0.1:{free_port()}"
        samples.append(await _measure([sys.executable, "-c", BARE_SERVER, address], {}, address))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-") as directory:
        root = Path(directory)
        bare_start, bare_rss = await _bare_baseline()
        rows = []
        for name in (*SERVICE_NAMES, "gateway"):
            start, rss = await _median_of_runs(name, root)
            rows.append(
                Row(
                    "startup",
                    f"{name}: start to SERVING",
                    "s",
                    start,
                    bare_start,
                    "bare grpc.aio + health",
                )
            )
            rows.append(
                Row(
                    "startup",
                    f"{name}: idle RSS",
                    "MiB",
                    rss,
                    bare_rss,
                    "bare grpc.aio + health",
                    f"<= {BUDGETS_MIB[name]}",
                )
            )
        return rows
