"""Sweeps on a real Dask cluster on loopback: a scheduler and two single-threaded
workers started by the test (`python -m dask scheduler|worker`), the backtest service
on real gRPC and SQLite. The cluster is reached by the test only to see what its
scheduler holds and to kill one of its workers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from common.config import ConfigError, load_config, parse_settings
from common.errors import reason_of
from common.server import running
from common.testing import free_port, isolated_config
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.backtest.v1 import backtest_pb2_grpc
from services.backtest.main import SPEC
from services.backtest.settings import BacktestSettings

distributed = pytest.importorskip("distributed")

if TYPE_CHECKING:
    from edgequant.backtest.v1.backtest_pb2_grpc import BacktestServiceAsyncStub as Stub

DATA = Path(__file__).parent / "data"
GUARD_SECONDS = 60.0

SLOW_STRATEGY = '''"""Sleeps before answering: a sweep still running when it is cancelled."""
import time

import numpy as np

from strategies import Parameter

PARAMETERS = [Parameter("seconds", "float", 0.3, 0.0, 600.0, "how long to think")]


def signals(candles, seconds):
    time.sleep(seconds)
    return np.full(len(candles), np.nan)
'''

# Reads a file beside its module: it loads in the service, not where only the module's
# source travels.
BESIDE_STRATEGY = '''"""Reads its thresholds from a file beside it."""
from pathlib import Path

import numpy as np

from strategies import Parameter

LEVEL = float((Path(__file__).parent / "beside.txt").read_text())
PARAMETERS = [Parameter("shift", "float", 0.0, 0.0, 1.0, "unused")]


def signals(candles, shift):
    return np.full(len(candles), np.nan)
'''

SWEEP = pb.Sweep(
    grids=[
        pb.ParameterGrid(name="fast", values=[5, 10, 15]),
        pb.ParameterGrid(name="slow", values=[30, 60]),
    ]
)


@dataclasses.dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen[bytes]]


def _start(*arguments: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).parents[3],
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A scheduler and two workers on loopback, one thread each, no nanny (a killed
    worker stays dead), shared by the module's tests: the one that kills a worker comes
    last."""
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    scheduler = _start("scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard")
    worker = ("--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard")
    workers = [_start("worker", address, *worker, "--memory-limit", "0") for _ in range(2)]
    try:
        asyncio.run(_workers_joined(address, 2))
        yield Cluster(address, workers)
    finally:
        for process in [*workers, scheduler]:
            process.kill()  # nothing of theirs outlives the test
        for process in [*workers, scheduler]:
            process.wait()


async def _workers_joined(address: str, count: int) -> None:
    async with distributed.Client(address, asynchronous=True, timeout=GUARD_SECONDS) as client:
        await client.wait_for_workers(count, timeout=GUARD_SECONDS)


def _sweep_tasks(dask_scheduler: Any) -> dict[str, int]:
    """The scheduler's tasks of EdgeQuant sweeps, and how many a worker is processing."""
    ours = [key for key in dask_scheduler.tasks if str(key).startswith("edgequant-")]
    processing = sum(len(worker.processing) for worker in dask_scheduler.workers.values())
    return {"tasks": len(ours), "processing": processing}


@asynccontextmanager
async def _serve(tmp_path: Path, **overrides: str) -> AsyncIterator[tuple[Stub, str]]:
    strategies = tmp_path / "strategies"
    strategies.mkdir(parents=True)
    (strategies / "slow.py").write_text(SLOW_STRATEGY)
    (strategies / "beside.py").write_text(BESIDE_STRATEGY)
    (strategies / "beside.txt").write_text("0.5")
    environment = isolated_config(
        tmp_path,
        BACKTEST__JOBS__STRATEGIES_DIR=str(strategies),
        BACKTEST__MEMORY_BUDGET_MIB="4096",
        **overrides,
    )
    async with (
        running(SPEC, load_config(environment)) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        stub = backtest_pb2_grpc.BacktestServiceStub(channel)
        imported = await stub.ImportDataset(
            pb.ImportDatasetRequest(
                name="ETH/BTC 1m",
                format=pb.DATASET_FORMAT_FREQTRADE_JSON,
                content=(DATA / "ETH_BTC-1m.json.gz").read_bytes(),
                symbol="ETH/BTC",
            )
        )
        yield stub, imported.dataset.dataset_id


async def _submit(stub: Stub, dataset_id: str, strategy: str, sweep: pb.Sweep) -> str:
    submitted = await stub.SubmitBacktest(
        pb.SubmitBacktestRequest(dataset_id=dataset_id, strategy=strategy, sweep=sweep)
    )
    job_id: str = submitted.job.job_id
    return job_id


async def _ended(stub: Stub, job_id: str) -> list[pb.StreamJobResponse]:
    async def collect() -> list[pb.StreamJobResponse]:
        return [event async for event in stub.StreamJob(pb.StreamJobRequest(job_id=job_id))]

    events: list[pb.StreamJobResponse] = await asyncio.wait_for(collect(), GUARD_SECONDS)
    return events


async def _swept(tmp_path: Path, **overrides: str) -> pb.GetResultResponse:
    async with _serve(tmp_path, **overrides) as (stub, dataset_id):
        job_id = await _submit(stub, dataset_id, "sma_cross", SWEEP)
        events = await _ended(stub, job_id)
        assert events[-1].HasField("result"), events[-1]
        result: pb.GetResultResponse = await stub.GetResult(
            pb.GetResultRequest(job_id=job_id, page_size=1000)
        )
        result.ClearField("job_id")
        return result


@pytest.mark.cluster
async def test_a_sweep_on_the_cluster_ranks_and_measures_as_the_local_pool(
    tmp_path: Path, cluster: Cluster
) -> None:
    local, on_cluster = await asyncio.gather(
        _swept(tmp_path / "local"),
        _swept(tmp_path / "cluster", BACKTEST__CLUSTER__SCHEDULER=cluster.address),
    )

    assert len(on_cluster.ranking) == 6
    assert on_cluster.metrics.trades > 0
    # Rankings, every run's metrics, and the best run's trades and curve.
    assert on_cluster == local


async def _progressed(stub: Stub, job_id: str) -> None:
    """Until the sweep has runs done (its chunks are on the cluster's workers)."""
    last = None
    async for event in stub.StreamJob(pb.StreamJobRequest(job_id=job_id)):
        if event.progress.runs_done > 0:
            return
        last = event.progress
    # With the job's last state and message, to tell a failed sweep from a slow one.
    raise AssertionError(f"the sweep ended before any progress: {last}")


@pytest.mark.cluster
async def test_cancel_mid_sweep_frees_the_cluster_workers(tmp_path: Path, cluster: Cluster) -> None:
    async with (
        _serve(tmp_path, BACKTEST__CLUSTER__SCHEDULER=cluster.address) as (stub, data),
        distributed.Client(cluster.address, asynchronous=True, timeout=GUARD_SECONDS) as client,
    ):
        values = [0.3 + k / 1000 for k in range(24)]
        sweep = pb.Sweep(grids=[pb.ParameterGrid(name="seconds", values=values)])
        job_id = await _submit(stub, data, "slow", sweep)
        await asyncio.wait_for(_progressed(stub, job_id), GUARD_SECONDS)
        during = await client.run_on_scheduler(_sweep_tasks)

        cancelled = await stub.CancelJob(pb.CancelJobRequest(job_id=job_id))
        after = await client.run_on_scheduler(_sweep_tasks)
        for _ in range(int(GUARD_SECONDS / 0.05)):  # the scheduler forgets them in its time
            if after == {"tasks": 0, "processing": 0}:
                break
            await asyncio.sleep(0.05)
            after = await client.run_on_scheduler(_sweep_tasks)

    assert during["tasks"] > 0
    assert cancelled.job.state == pb.JOB_STATE_CANCELLED
    assert after == {"tasks": 0, "processing": 0}


async def test_an_unreachable_scheduler_is_unavailable_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    nobody = f"tcp://127.0.0.1:{free_port()}"
    async with _serve(tmp_path, BACKTEST__CLUSTER__SCHEDULER=nobody) as (stub, data):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _submit(stub, data, "sma_cross", SWEEP)
        jobs = await stub.ListJobs(pb.ListJobsRequest())

    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason_of(refused.value) == "CLUSTER_UNAVAILABLE"
    assert len(jobs.jobs) == 0


async def test_an_unreachable_scheduler_with_fallback_runs_the_sweep_locally(
    tmp_path: Path,
) -> None:
    nobody = f"tcp://127.0.0.1:{free_port()}"
    async with _serve(
        tmp_path,
        BACKTEST__CLUSTER__SCHEDULER=nobody,
        BACKTEST__CLUSTER__FALLBACK_TO_LOCAL="true",
    ) as (stub, data):
        job_id = await _submit(stub, data, "sma_cross", SWEEP)
        events = await _ended(stub, job_id)

    assert events[0].progress.message.startswith("on the local pool")
    assert len(events[-1].result.ranking) == 6


@pytest.mark.cluster
async def test_a_strategy_module_the_cluster_cannot_load_fails_the_sweep_naming_it(
    tmp_path: Path, cluster: Cluster
) -> None:
    async with _serve(tmp_path, BACKTEST__CLUSTER__SCHEDULER=cluster.address) as (stub, data):
        sweep = pb.Sweep(grids=[pb.ParameterGrid(name="shift", values=[0.0, 0.5])])
        events = await _ended(stub, await _submit(stub, data, "beside", sweep))

    assert events[-1].progress.state == pb.JOB_STATE_FAILED
    assert "cannot load strategy module beside.py" in events[-1].progress.error
    assert "beside.txt" in events[-1].progress.error


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"scheduler": "tcp://10.0.0.5:8786"}, "not loopback"),
        ({"scheduler": "tls://10.0.0.5:8786"}, "needs tls_ca_file"),
        ({"scheduler": "10.0.0.5"}, "expected tcp://host:port"),
    ],
)
def test_a_scheduler_off_loopback_needs_tls(table: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_settings(BacktestSettings, {"cluster": table}, "backtest.")


def test_a_tls_scheduler_with_its_files_and_a_loopback_one_are_accepted() -> None:
    remote = {
        "scheduler": "tls://10.0.0.5:8786",
        "tls_ca_file": "ca.pem",
        "tls_cert_file": "cert.pem",
        "tls_key_file": "key.pem",
    }
    for table in (remote, {"scheduler": "localhost:8786"}, {"scheduler": "tcp://[::1]:8786"}):
        settings = parse_settings(BacktestSettings, {"cluster": table}, "backtest.")
        assert settings.cluster.enabled


@pytest.mark.cluster
async def test_a_worker_lost_mid_sweep_has_its_runs_retried(
    tmp_path: Path, cluster: Cluster
) -> None:
    async with _serve(tmp_path, BACKTEST__CLUSTER__SCHEDULER=cluster.address) as (stub, data):
        values = [0.2 + k / 1000 for k in range(16)]
        sweep = pb.Sweep(grids=[pb.ParameterGrid(name="seconds", values=values)])
        job_id = await _submit(stub, data, "slow", sweep)
        await asyncio.wait_for(_progressed(stub, job_id), GUARD_SECONDS)
        os.kill(cluster.workers[0].pid, signal.SIGKILL)
        events = await _ended(stub, job_id)
        job = (await stub.GetJob(pb.GetJobRequest(job_id=job_id))).job
        result = await stub.GetResult(pb.GetResultRequest(job_id=job_id))

    assert events[-1].HasField("result"), job.error
    assert job.runs_done == 16
    assert sorted(run.run_index for run in result.ranking) == list(range(1, 17))


# Each of several worker processes on one machine loads the same user modules at once,
# from the shared directory each writes them to (services.backtest.jobs.cluster).
_LOAD_AT_ONCE = """
import sys, time
from pathlib import Path
from services.backtest.jobs.cluster import StrategySource, load_check
go = Path(sys.argv[1])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
body = "# padding\\n" * 2000 + "def signals(candles, **parameters):\\n    return None\\n"
for n in range(40):
    problem = load_check(f"s{n}", StrategySource(f"s{n}", body + f"# {n}\\n"))
    if problem:
        print(problem)
"""


def test_workers_loading_one_strategy_module_at_once_each_load_it_whole(tmp_path: Path) -> None:
    go = tmp_path / "go"
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _LOAD_AT_ONCE, str(go)],
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for worker in workers:  # every one imported, waiting: they start together
        assert worker.stdout is not None
        assert worker.stdout.readline() == "ready\n"
    go.touch()
    problems = [worker.communicate(timeout=GUARD_SECONDS)[0] for worker in workers]

    # A module rewritten in place while another worker imported it read as empty there:
    # "... defines no signals(candles, **parameters) function".
    assert problems == ["", "", "", ""]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0]
