"""The job manager through the real service: StreamJob's wake-ups and the warm worker
pool (reuse, idle reaping, cancel, crashes, the memory watchdog). Real gRPC, real
SQLite, real worker processes; the manager is reached only to read its pool's pids, to
run code between StreamJob's read and its wait, and to hold a watch open unread."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from common.config import load_config
from common.server import running
from common.service import Runtime
from common.testing import eventually as _until
from common.testing import isolated_config
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.backtest.v1 import backtest_pb2_grpc
from services.backtest.jobs.manager import JobManager
from services.backtest.main import SPEC
from services.backtest.servicer import BacktestServicer

if TYPE_CHECKING:
    from edgequant.backtest.v1.backtest_pb2_grpc import BacktestServiceAsyncStub as Stub

DATA = Path(__file__).parent / "data"
# Every wait below is bounded by this: a lost wake-up or a worker never reaped fails the
# test instead of hanging it.
GUARD_SECONDS = 10.0

SLOW_STRATEGY = '''"""Sleeps before answering: a job that is still running when cancelled."""
import time

import numpy as np

from strategies import Parameter

PARAMETERS = [Parameter("seconds", "float", 60.0, 0.0, 600.0, "how long to think")]


def signals(candles, seconds):
    time.sleep(seconds)
    return np.full(len(candles), np.nan)
'''

CRASH_STRATEGY = '''"""Kills its own worker process, as a segfaulting extension would."""
import os

from strategies import Parameter

PARAMETERS = [Parameter("code", "int", 3, 1, 100, "exit code")]


def signals(candles, code):
    os._exit(code)
'''

HOG_STRATEGY = '''"""Holds far more memory than its worker may, then waits."""
import time

import numpy as np

from strategies import Parameter

PARAMETERS = [Parameter("mib", "int", 300, 1, 4096, "memory to hold")]


def signals(candles, mib):
    held = np.ones(mib * 1024 * 1024 // 8)
    time.sleep(60)
    return np.full(len(candles), np.nan) + held[0]
'''


@dataclasses.dataclass
class Backtest:
    stub: Stub
    manager: JobManager
    dataset_id: str


@asynccontextmanager
async def _serve(tmp_path: Path, **overrides: str) -> AsyncIterator[Backtest]:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    for name, source in (
        ("slow", SLOW_STRATEGY),
        ("crash", CRASH_STRATEGY),
        ("hog", HOG_STRATEGY),
    ):
        (strategies / f"{name}.py").write_text(source)
    environment = isolated_config(
        tmp_path,
        BACKTEST__JOBS__STRATEGIES_DIR=str(strategies),
        # The service shares this process with pytest: its own guard would count that.
        BACKTEST__MEMORY_BUDGET_MIB="4096",
        **overrides,
    )
    managers: list[JobManager] = []

    @asynccontextmanager
    async def lifespan(runtime: Runtime) -> AsyncIterator[BacktestServicer]:
        async with SPEC.lifespan(runtime) as servicer:
            managers.append(servicer.jobs)
            yield servicer

    spec = dataclasses.replace(SPEC, lifespan=lifespan)
    async with (
        running(spec, load_config(environment)) as service,
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
        yield Backtest(stub, managers[0], imported.dataset.dataset_id)


async def _guarded(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, GUARD_SECONDS)


async def _submit(backtest: Backtest, strategy: str, **parameters: float) -> str:
    submitted = await backtest.stub.SubmitBacktest(
        pb.SubmitBacktestRequest(
            dataset_id=backtest.dataset_id, strategy=strategy, parameters=parameters
        )
    )
    job_id: str = submitted.job.job_id
    return job_id


async def _events(backtest: Backtest, job_id: str) -> list[pb.StreamJobResponse]:
    async def collect() -> list[pb.StreamJobResponse]:
        stream = backtest.stub.StreamJob(pb.StreamJobRequest(job_id=job_id))
        return [event async for event in stream]

    events: list[pb.StreamJobResponse] = await _guarded(collect())
    return events


async def _run(backtest: Backtest, strategy: str = "sma_cross", **parameters: float) -> str:
    job_id = await _submit(backtest, strategy, **parameters)
    events = await _events(backtest, job_id)
    assert events[-1].HasField("result"), events[-1]
    return job_id


async def _result(backtest: Backtest, job_id: str) -> pb.GetResultResponse:
    result: pb.GetResultResponse = await backtest.stub.GetResult(
        pb.GetResultRequest(job_id=job_id, page_size=1000)
    )
    return result


def _children() -> set[int]:
    return {child.pid for child in multiprocessing.active_children() if child.pid is not None}


async def test_a_change_between_read_and_wait_still_wakes_stream_job(tmp_path: Path) -> None:
    """The job is cancelled after StreamJob has read it and before it waits: no further
    change ever comes, so only a wake-up that is not lost ends the stream."""
    async with _serve(tmp_path) as backtest:
        job_id = await _submit(backtest, "slow")
        cancelled: list[pb.JobState.ValueType] = []

        async def cancel_between_read_and_wait(watched: str) -> None:
            if watched == job_id and not cancelled:
                response = await backtest.stub.CancelJob(pb.CancelJobRequest(job_id=job_id))
                cancelled.append(response.job.state)

        backtest.manager.before_watch_wait = cancel_between_read_and_wait
        events = await _events(backtest, job_id)

        assert cancelled == [pb.JOB_STATE_CANCELLED]
        states = [event.progress.state for event in events]
        assert states[0] in (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING)
        assert states[-1] == pb.JOB_STATE_CANCELLED


async def test_a_warm_worker_runs_the_next_job_with_identical_results(tmp_path: Path) -> None:
    async with _serve(tmp_path) as backtest:
        assert backtest.manager.pool.idle_pids == []  # an idle stack starts none
        cold = await _run(backtest, fast=10, slow=30)
        [worker] = backtest.manager.pool.idle_pids
        other = await _run(backtest, fast=5, slow=50)
        warm = await _run(backtest, fast=10, slow=30)

        assert backtest.manager.pool.idle_pids == [worker]
        assert _children() == {worker}
        cold_result, other_result, warm_result = [
            await _result(backtest, job_id) for job_id in (cold, other, warm)
        ]
        for result in (cold_result, warm_result):
            result.ClearField("job_id")
        assert warm_result == cold_result
        assert len(warm_result.trades) > 0
        assert len(warm_result.equity_curve) > 0
        assert other_result.metrics != warm_result.metrics


async def test_an_idle_worker_is_reaped_after_idle_seconds(tmp_path: Path) -> None:
    async with _serve(tmp_path, BACKTEST__JOBS__IDLE_SECONDS="0.3") as backtest:
        await _run(backtest)
        [worker] = backtest.manager.pool.idle_pids
        await _until(lambda: worker not in _children())
        assert backtest.manager.pool.idle_pids == []
        # The next job starts a fresh worker and still succeeds.
        await _run(backtest)
        [fresh] = backtest.manager.pool.idle_pids
        assert fresh != worker


async def test_with_idle_seconds_zero_no_worker_is_kept(tmp_path: Path) -> None:
    async with _serve(tmp_path, BACKTEST__JOBS__IDLE_SECONDS="0") as backtest:
        await _run(backtest)
        assert backtest.manager.pool.idle_pids == []
        assert _children() == set()


async def test_cancel_kills_the_warm_worker_and_the_next_job_gets_a_fresh_one(
    tmp_path: Path,
) -> None:
    async with _serve(tmp_path, BACKTEST__JOBS__MAX_WORKERS="1") as backtest:
        await _run(backtest)
        [warm] = backtest.manager.pool.idle_pids
        job_id = await _submit(backtest, "slow")
        # With one worker allowed, the slow job runs on the warm one.
        assert backtest.manager.pool.idle_pids == []
        assert _children() == {warm}
        cancelled = await backtest.stub.CancelJob(pb.CancelJobRequest(job_id=job_id))

        assert cancelled.job.state == pb.JOB_STATE_CANCELLED
        assert _children() == set()
        assert backtest.manager.pool.idle_pids == []
        await _run(backtest)
        [fresh] = backtest.manager.pool.idle_pids
        assert fresh != warm


async def test_a_crashed_worker_fails_its_job_and_is_replaced(tmp_path: Path) -> None:
    async with _serve(tmp_path) as backtest:
        await _run(backtest)
        [warm] = backtest.manager.pool.idle_pids
        job_id = await _submit(backtest, "crash", code=7)
        events = await _events(backtest, job_id)

        assert events[-1].progress.state == pb.JOB_STATE_FAILED
        assert "exited early" in events[-1].progress.error
        assert "7" in events[-1].progress.error
        await _until(lambda: warm not in _children())
        await _run(backtest)
        [fresh] = backtest.manager.pool.idle_pids
        assert fresh != warm


async def test_the_memory_watchdog_stops_a_warm_worker_over_its_budget(tmp_path: Path) -> None:
    async with _serve(tmp_path, BACKTEST__JOBS__WORKER_BUDGET_MIB="160") as backtest:
        await _run(backtest)
        [warm] = backtest.manager.pool.idle_pids
        job_id = await _submit(backtest, "hog", mib=400)
        events = await _events(backtest, job_id)

        assert events[-1].progress.state == pb.JOB_STATE_FAILED
        assert "memory budget of 160 MiB" in events[-1].progress.error
        assert warm not in _children()
        await _run(backtest)
        [fresh] = backtest.manager.pool.idle_pids
        assert fresh != warm


async def test_a_small_sweep_runs_on_the_warm_worker_and_warms_another(tmp_path: Path) -> None:
    async with _serve(tmp_path, BACKTEST__JOBS__MAX_WORKERS="2") as backtest:
        await _run(backtest)
        [warm] = backtest.manager.pool.idle_pids
        sweep = pb.Sweep(
            grids=[
                pb.ParameterGrid(name="fast", values=[5, 10]),
                pb.ParameterGrid(name="slow", values=[30, 60]),
            ]
        )
        submitted = await backtest.stub.SubmitBacktest(
            pb.SubmitBacktestRequest(
                dataset_id=backtest.dataset_id, strategy="sma_cross", sweep=sweep
            )
        )
        # Its runs went to the warm worker; a second one is starting for the next job.
        [spare] = backtest.manager.pool.idle_pids
        assert spare != warm
        events = await _events(backtest, submitted.job.job_id)

        assert events[-1].result.metrics.trades > 0
        assert len(events[-1].result.ranking) == 4
        assert set(backtest.manager.pool.idle_pids) == {warm, spare}


async def test_a_watcher_slower_than_the_job_still_sees_it_end(tmp_path: Path) -> None:
    """The job ends while the watcher's consumer is still busy with an earlier state:
    that state stays as it was read, and the end still comes."""
    async with _serve(tmp_path) as backtest:
        job_id = await _submit(backtest, "sma_cross")
        watch = backtest.manager.watch(job_id)
        first = await _guarded(anext(watch))
        first_state = first.state

        async def succeeded() -> bool:
            job = await backtest.stub.GetJob(pb.GetJobRequest(job_id=job_id))
            return job.job.state == pb.JOB_STATE_SUCCEEDED

        for _ in range(int(GUARD_SECONDS / 0.02)):
            if await succeeded():
                break
            await asyncio.sleep(0.02)
        rest = await _guarded(_rest(watch))

        assert first_state in ("queued", "running")
        assert first.state == first_state
        assert rest[-1].state == "succeeded"


async def _rest(rows: AsyncIterator[Any]) -> list[Any]:
    return [row async for row in rows]


async def test_on_postgresql_datasets_jobs_sweeps_and_results_are_stored_as_on_sqlite(
    tmp_path: Path, postgres_url: str
) -> None:
    """The same single run and sweep on both databases give the same results and rankings."""
    answers: list[tuple[pb.GetResultResponse, pb.GetResultResponse, int, int]] = []
    for name, url in (("sqlite", ""), ("postgres", postgres_url)):
        (tmp_path / name).mkdir()
        async with _serve(tmp_path / name, BACKTEST__DATABASE_URL=url) as backtest:
            single = await _result(backtest, await _run(backtest, fast=10, slow=30))
            sweep = pb.Sweep(grids=[pb.ParameterGrid(name="fast", values=[5, 10])])
            submitted = await backtest.stub.SubmitBacktest(
                pb.SubmitBacktestRequest(
                    dataset_id=backtest.dataset_id, strategy="sma_cross", sweep=sweep
                )
            )
            assert (await _events(backtest, submitted.job.job_id))[-1].HasField("result")
            swept = await _result(backtest, submitted.job.job_id)
            jobs = await backtest.stub.ListJobs(pb.ListJobsRequest())
            datasets = await backtest.stub.ListDatasets(pb.ListDatasetsRequest())
            for result in (single, swept):
                result.ClearField("job_id")
            answers.append((single, swept, len(jobs.jobs), len(datasets.datasets)))
    on_sqlite, on_postgres = answers
    assert on_postgres == on_sqlite
    assert on_postgres[2:] == (2, 1)
    assert len(on_postgres[0].trades) > 0
    assert len(on_postgres[1].ranking) == 2
