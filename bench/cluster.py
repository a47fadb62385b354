# ruff: noqa: PLC0415 - Dask and the service's modules load only when the section runs
"""A parameter sweep on the local worker pool beside the same sweep on a local Dask
cluster of two workers (one thread each, on the same machine): the ratio is the
engine's overhead, since both have two processes' worth of cores. And the backtest
service's own RSS with `[backtest.cluster]` configured: the Dask client lives in the
job worker that drives the sweep, never in the service.

Full size: 250 runs (sma_cross, a 25 x 10 grid) on the bench's 1,000,000 one-minute
candles (bench.backtest.build_candles), submitted through the real service over gRPC,
timed from submit to succeeded.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc

from bench.backtest import _import, _until_finished, build_candles
from bench.report import Row
from bench.section import service_process, sized
from common.config import load_config
from common.memory import MIB, rss_bytes
from common.testing import free_port, isolated_config

SECTION = "cluster"
CANDLES = sized(1_000_000, 5_000)
# 250 runs, not the 1,000: on this shared 2-core machine 1,000 runs of 1M
# candles take minutes per engine; the ratio is per run, so a quarter tells the same.
FAST = sized([float(v) for v in range(2, 27)], [5.0, 10.0])
SLOW = sized([float(v) for v in range(50, 150, 10)], [30.0, 40.0])
RSS_SAMPLE_SECONDS = 0.05


@asynccontextmanager
async def local_cluster(workers: int = 2) -> AsyncIterator[str]:
    """`dask scheduler` and `workers` single-threaded `dask worker`s on loopback."""

    def start(*arguments: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *arguments],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    address = f"tcp://127.0.0.1:{free_port()}"
    processes = [
        start("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
              "--no-dashboard"),
        *(
            start("worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                  "--no-nanny", "--no-dashboard", "--memory-limit", "0")
            for _ in range(workers)
        ),
    ]  # fmt: skip
    try:
        await _joined(address, workers)
        yield address
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _joined(address: str, workers: int) -> None:
    from distributed import Client

    async with Client(address, asynchronous=True, timeout=60) as client:
        await client.wait_for_workers(workers, timeout=60)


def _request(dataset_id: str) -> Any:
    from edgequant.backtest.v1 import backtest_pb2 as pb

    sweep = pb.Sweep(
        grids=[
            pb.ParameterGrid(name="fast", values=FAST),
            pb.ParameterGrid(name="slow", values=SLOW),
        ],
        rank_by="sharpe_ratio",
    )
    return pb.SubmitBacktestRequest(dataset_id=dataset_id, strategy="sma_cross", sweep=sweep)


async def _sweep(root: Path, rows: Any, **overrides: str) -> dict[str, Any]:
    """The sweep through a fresh service: seconds, its ranking, and the service's RSS
    idle (after the dataset's import) and at its highest during the sweep."""
    from edgequant.backtest.v1 import backtest_pb2 as pb
    from edgequant.backtest.v1 import backtest_pb2_grpc

    environment = isolated_config(
        root / "stack", BACKTEST__DATASETS__IMPORT_DIR=str(root / "import"), **overrides
    )
    address = load_config(environment).backtest.address
    async with (
        service_process("backtest", environment) as process,
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub = backtest_pb2_grpc.BacktestServiceStub(channel)
        dataset_id = await _import(stub, root, "candles", rows)
        idle = rss_bytes(process.pid)
        peak = idle
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, rss_bytes(process.pid))
                await asyncio.sleep(RSS_SAMPLE_SECONDS)

        sampler = asyncio.create_task(sample())
        try:
            started = time.perf_counter()
            _, _, job = await _until_finished(stub, _request(dataset_id))
            seconds = time.perf_counter() - started
        finally:
            sampling = False
            await sampler
        result = await stub.GetResult(pb.GetResultRequest(job_id=job.job_id))
        ranking = [(run.run_index, run.metrics.sharpe_ratio) for run in result.ranking]
        return {
            "seconds": seconds,
            "runs": int(job.runs_total),
            "ranking": ranking,
            "idle_rss": idle,
            "peak_rss": peak,
        }


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-cluster-") as directory:
        root = Path(directory)
        rows = build_candles(CANDLES)
        local = await _sweep(root / "local", rows)
        async with local_cluster(2) as address:
            on_cluster = await _sweep(root / "cluster", rows, BACKTEST__CLUSTER__SCHEDULER=address)
    if on_cluster["ranking"] != local["ranking"]:
        raise RuntimeError("the cluster's ranking differs from the local pool's")
    sweep = f"sweep of {local['runs']:,} runs, {CANDLES:,} candles"
    return [
        Row(SECTION, f"{sweep}: local pool (2 workers)", "s", local["seconds"]),
        Row(SECTION, f"{sweep}: Dask cluster (2 workers, loopback)", "s",
            on_cluster["seconds"], local["seconds"], "local pool"),
        Row(SECTION, "Dask cluster / local pool (the engine's overhead)", "x",
            on_cluster["seconds"] / local["seconds"]),
        Row(SECTION, "backtest service RSS, cluster configured, idle", "MiB",
            on_cluster["idle_rss"] / MIB, local["idle_rss"] / MIB, "no cluster", "<= 128"),
        Row(SECTION, "backtest service peak RSS during the cluster sweep", "MiB",
            on_cluster["peak_rss"] / MIB, local["peak_rss"] / MIB, "local pool sweep", "<= 128"),
    ]  # fmt: skip


if __name__ == "__main__":  # `python -m bench.cluster`: this section alone
    from bench.report import table

    print(table(asyncio.run(run())))
