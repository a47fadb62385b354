"""The job manager: the one place that ties a job's parts together.

Admission (`admission`) checks a job; the queue (`scheduling`) decides when it starts
and in how many worker processes; its backend (`backend`: the local pool, or a Dask
cluster for sweeps when `[backtest.cluster]` names one) turns it into tasks for
processes of the warm pool (`pool`), which report in the typed messages of `protocol`,
read here without blocking the loop; the memory watchdog (`watchdog`) stops a job whose
worker passes its budget; the repository (storage/jobs.py) keeps jobs and runs.

The database is the job's truth; watchers (StreamJob) wake on every change, without
polling and without missing one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import FailedPrecondition, NotFound, Unavailable
from common.memory import MIB, MemoryGuard, rss_bytes
from services.backtest.datasets.store import DatasetStore
from services.backtest.jobs import admission
from services.backtest.jobs.backend import Backend, DaskBackend, LocalBackend
from services.backtest.jobs.pool import PooledWorker, WorkerPool
from services.backtest.jobs.protocol import (
    DetailsKept,
    Progress,
    RunFinished,
    TaskDone,
    TaskFailed,
    WorkerMessage,
    receive,
)
from services.backtest.jobs.records import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    Job,
    RunResult,
)
from services.backtest.jobs.scheduling import JobQueue, Launch, Queued
from services.backtest.jobs.spec import JobSpec
from services.backtest.jobs.watchdog import watch_memory
from services.backtest.reasons import Reason
from services.backtest.settings import ClusterSettings, JobSettings
from services.backtest.storage.jobs import JobRepository
from strategies.base import StrategyDefinition

__all__ = [
    "CANCELLED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "TERMINAL",
    "JobManager",
    "JobNotFound",
]

log = logging.getLogger("edgequant.backtest.jobs")

# A worker still holding more than this after a task (memory the allocator kept, a tick
# engine's numba, a Dask client) is not kept warm.
WARM_WORKER_MAX_BYTES = admission.BAR_WORKER_BASE_BYTES
PROGRESS_INTERVAL = 0.2
STOP_GRACE_SECONDS = 2.0
# An ended job's row stays in memory this long, for the watchers still to wake.
LIVE_AFTER_END_SECONDS = 10.0


@dataclass
class _Worker:
    """One pooled worker's part in one job."""

    pooled: PooledWorker
    runs: int
    fraction: float = 0.0
    error: str = ""
    # Its task ended (or it died): it is no longer this job's to stop.
    done: bool = False
    terminated: bool = False


@dataclass
class _Active:
    spec: JobSpec
    backend: Backend
    workers: list[_Worker] = field(default_factory=list)
    runs_done: int = 0
    # Runs reported and not yet stored, as `runs` table rows.
    pending_runs: list[dict[str, Any]] = field(default_factory=list)
    # Sweep runs whose details a worker saved: run index -> file name.
    kept: dict[int, str] = field(default_factory=dict)
    cancelled: bool = False
    over_budget: str = ""
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def progress(self) -> float:
        done = sum(worker.fraction * worker.runs for worker in self.workers)
        return min(done / len(self.spec.runs), 1.0)


class JobNotFound(NotFound):
    """No job with that id: see ListJobs."""


class JobManager:
    def __init__(
        self,
        repository: JobRepository,
        datasets: DatasetStore,
        results_dir: Path,
        settings: JobSettings,
        memory: MemoryGuard,
        *,
        cluster: ClusterSettings | None = None,
    ) -> None:
        self.repository = repository
        self.datasets = datasets
        self.results_dir = results_dir
        self.settings = settings
        self.memory = memory
        self.pool = WorkerPool(settings.max_workers, settings.idle_seconds)
        self.local: Backend = LocalBackend()
        self.cluster: DaskBackend | None = (
            DaskBackend(cluster) if cluster is not None and cluster.enabled else None
        )
        self._queue = JobQueue(settings.max_workers)
        self._active: dict[str, _Active] = {}
        # Bumped after every committed job change: a watcher that read the job at version
        # v waits until the version differs, so a change landing between its read and
        # its wait is never lost.
        self._version = 0
        self._changed = asyncio.Condition()
        # The jobs not yet ended (or just ended), as last committed: watchers read them
        # here rather than from the database.
        self._live: dict[str, Job] = {}
        # Test seam: awaited by watch() between its read and its wait.
        self.before_watch_wait: Callable[[str], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Jobs cut short by the last stop are marked failed; their workers are gone."""
        await self.repository.fail_unfinished("interrupted: the service stopped", _now())

    async def stop(self) -> None:
        self._queue.clear()
        for active in list(self._active.values()):
            active.over_budget = "interrupted: the service stopped"
            self._terminate(active)
        for active in list(self._active.values()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(active.finished.wait(), STOP_GRACE_SECONDS * 2)
        for task in list(self._tasks):
            task.cancel()
        await self.pool.close()

    # --- submission ---------------------------------------------------------------

    async def submit(self, request: admission.SubmitRequest, strategy: StrategyDefinition) -> Job:
        dataset = await self.datasets.get(request.dataset_id)
        admission.check_dataset(dataset, request.engine)
        runs, skipped = admission.expand_runs(request, strategy, self.settings.max_sweep_runs)
        rank_by = admission.check_rank_by(request.rank_by) if request.grid else ""
        admission.check_worker_budget(
            request.engine, dataset.rows, dataset.size_bytes, self.settings.worker_budget_mib
        )
        self.memory.admit("SubmitBacktest")
        job_id = str(uuid.uuid4())
        spec = JobSpec(
            job_id=job_id,
            engine=request.engine,
            strategy=strategy.name,
            dataset_file=str(self.datasets.file(dataset)),
            runs=runs,
            bar=request.bar,
            tick=request.tick,
            tick_size=dataset.tick_size,
            lot_size=dataset.lot_size,
            strategies_dir=self.settings.strategies_dir,
            rank_by=rank_by,
            keep_details=self.settings.sweep_details_kept,
        )
        backend, note = await self._backend_for(spec)
        notes = [note] if note else []
        if skipped:
            notes.append(f"{skipped} grid points skipped: they break a parameter constraint")
        job = Job(
            job_id=job_id,
            state=QUEUED,
            engine=request.engine,
            strategy=strategy.name,
            dataset_id=dataset.dataset_id,
            runs_total=len(runs),
            runs_done=0,
            progress=0.0,
            message="; ".join(notes),
            error="",
            rank_by=rank_by,
            submit_time=_now(),
        )
        await self.repository.add(job, spec.to_json())
        self._live[job_id] = job
        self._queue.append(Queued(spec, backend, dataset.rows))
        self._schedule()
        return job

    async def _backend_for(self, spec: JobSpec) -> tuple[Backend, str]:
        """A bar sweep goes to the cluster when one is configured; single runs (one run
        gains nothing from a cluster) and tick jobs (their engine's numba compile would
        be paid on every cluster worker) stay local. The note says when it fell back."""
        if self.cluster is None or not spec.is_sweep or spec.engine != "bar":
            return self.local, ""
        try:
            await self.cluster.check()
        except Unavailable as error:
            if not self.cluster.settings.fallback_to_local:
                raise
            log.warning("cluster unavailable: the sweep runs on the local pool", exc_info=True)
            return self.local, f"on the local pool: {error}"
        return self.cluster, ""

    # --- running --------------------------------------------------------------------

    def _busy_workers(self) -> int:
        return sum(not worker.done for job in self._active.values() for worker in job.workers)

    def _schedule(self) -> None:
        for launch in self._queue.due(self._busy_workers(), self.pool.idle_count):
            self._launch(launch)
            self.pool.warm(launch.warm)

    def _launch(self, launch: Launch) -> None:
        spec, backend = launch.queued.spec, launch.queued.backend
        active = _Active(spec, backend)
        self._active[spec.job_id] = active
        for task in backend.tasks(spec, launch.processes, str(self.results_dir)):
            pooled = self.pool.acquire()
            # A worker that died since it went idle (and before the pool noticed) fails
            # this job at its first read, like any crash.
            with contextlib.suppress(OSError):
                pooled.pipe.send(task)
            active.workers.append(_Worker(pooled, runs=len(task.run_indices)))
        self._spawn(self._run(active))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, active: _Active) -> None:
        job_id = active.spec.job_id
        # What admission noted (a sweep that fell back to the local pool) stays said.
        noted = self._live[job_id].message
        started = f"{noted}; started" if noted else "started"
        await self._update(job_id, state=RUNNING, start_time=_now(), message=started)
        watchdog = asyncio.get_running_loop().create_task(
            watch_memory(
                lambda: [
                    worker.pooled.pid
                    for worker in active.workers
                    if not worker.done and worker.pooled.pid is not None
                ],
                self.settings.worker_budget_mib * MIB,
                lambda: self._over_budget(active),
            )
        )
        try:
            await asyncio.gather(*(self._follow(active, worker) for worker in active.workers))
        finally:
            watchdog.cancel()
            await self._finish(active)
            del self._active[job_id]
            active.finished.set()
            self._schedule()

    def _over_budget(self, active: _Active) -> None:
        active.over_budget = (
            f"a worker passed its memory budget of "
            f"{self.settings.worker_budget_mib} MiB and was stopped"
        )
        self._terminate(active)

    async def _follow(self, active: _Active, worker: _Worker) -> None:
        """Reads one worker's reports until its task ends (or it dies), then hands it
        back to the pool: kept warm only after a clean task of a bar job."""
        loop = asyncio.get_running_loop()
        # Progress is written every PROGRESS_INTERVAL, not at once: a small job's only
        # writes are its start and its end.
        last_write = loop.time()
        ended = False
        closed = False
        while not ended and not closed:
            messages, closed = await receive(worker.pooled.pipe)
            for message in messages:
                ended = ended or _take(active, worker, message)
            if not ended and loop.time() - last_write >= PROGRESS_INTERVAL:
                last_write = loop.time()
                await self._write_progress(active)
        reusable = (
            ended
            and not worker.error
            and not worker.terminated
            and active.spec.engine == "bar"
            and _rss_or_zero(worker.pooled.pid) <= WARM_WORKER_MAX_BYTES
        )
        worker.done = True
        await self.pool.release(worker.pooled, reusable=reusable)

    async def _write_progress(self, active: _Active) -> None:
        total = len(active.spec.runs)
        rows, active.pending_runs = active.pending_runs, []
        await self._update(
            active.spec.job_id,
            rows,
            progress=active.progress,
            runs_done=active.runs_done,
            message=f"{active.runs_done}/{total} runs",
        )

    async def _finish(self, active: _Active) -> None:
        spec = active.spec
        rows, active.pending_runs = active.pending_runs, []
        errors = [worker.error for worker in active.workers if worker.error]
        exits = [worker.pooled.process.exitcode for worker in active.workers]
        if active.cancelled:
            state, error = CANCELLED, ""
        elif active.over_budget:
            state, error = FAILED, active.over_budget
        elif errors:
            state, error = FAILED, errors[0]
        elif active.runs_done < len(spec.runs):
            state, error = FAILED, f"a worker exited early (exit codes {exits})"
        else:
            state, error = SUCCEEDED, ""
        if state == CANCELLED:
            shutil.rmtree(self.results_dir / spec.job_id, ignore_errors=True)
        keep_best = None
        if state == SUCCEEDED and spec.is_sweep:
            keep_best = (spec.rank_by, spec.keep_details, active.kept)
        written, unwanted = await self.repository.finish(
            spec.job_id,
            runs=rows,
            drop_runs=state == CANCELLED,
            keep_best=keep_best,
            state=state,
            error=error,
            end_time=_now(),
            progress=1.0 if state == SUCCEEDED else active.progress,
            runs_done=active.runs_done,
            message={SUCCEEDED: "done", CANCELLED: "cancelled", FAILED: "failed"}[state],
        )
        for file_name in unwanted:
            (self.results_dir / file_name).unlink(missing_ok=True)
        await self._notify(spec.job_id, written)

    # --- queries and control --------------------------------------------------------

    async def get(self, job_id: str) -> Job:
        job = await self.repository.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}", reason=Reason.JOB_NOT_FOUND)
        return job

    async def page(self, states: list[str], offset: int, limit: int) -> list[Job]:
        return await self.repository.page(states, offset, limit)

    async def runs(self, job_id: str, rank_by: str) -> list[RunResult]:
        return await self.repository.runs(job_id, rank_by)

    async def cancel(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job.state in (SUCCEEDED, FAILED):
            raise FailedPrecondition(
                f"job {job_id} has already {job.state}", reason=Reason.JOB_ALREADY_FINISHED
            )
        if self._queue.remove(job_id):
            await self._update(job_id, state=CANCELLED, end_time=_now(), message="cancelled")
        active = self._active.get(job_id)
        if active is not None:
            active.cancelled = True
            self._terminate(active)
            await active.finished.wait()
        return await self.get(job_id)

    def _terminate(self, active: _Active) -> None:
        """Stops the job's workers still on its task (never one already handed back to
        the pool: it may be running another job by now). SIGTERM first: a worker driving
        a cluster cancels its cluster tasks before it exits."""
        stopping = [worker for worker in active.workers if not worker.done]
        for worker in stopping:
            worker.terminated = True
            if worker.pooled.process.is_alive():
                worker.pooled.process.terminate()
        self._spawn(self._kill_stragglers(stopping))

    async def _kill_stragglers(self, workers: list[_Worker]) -> None:
        await asyncio.sleep(STOP_GRACE_SECONDS)
        for worker in workers:
            if worker.pooled.process.is_alive():
                worker.pooled.process.kill()

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        """The job now, then again on every change, until it ends."""
        seen: tuple[object, ...] | None = None
        while True:
            version = self._version  # before the read: any later change differs from it
            live = self._live.get(job_id)
            job = live if live is not None else await self.get(job_id)
            snapshot = (job.state, job.progress, job.runs_done, job.message)
            if snapshot != seen:
                seen = snapshot
                yield job
            if job.ended:
                return
            if self.before_watch_wait is not None:
                await self.before_watch_wait(job_id)
            async with self._changed:
                while self._version == version:
                    await self._changed.wait()

    async def _update(
        self, job_id: str, runs: list[dict[str, Any]] | None = None, **values: Any
    ) -> None:
        """Changes the job (and adds `runs`) in one transaction, then wakes watchers."""
        written = await self.repository.update(job_id, runs, **values)
        await self._notify(job_id, written)

    async def _notify(self, job_id: str, committed: dict[str, Any]) -> None:
        """After a change is committed: the live job follows it, every watcher wakes."""
        live = self._live.get(job_id)
        if live is not None:
            self._live[job_id] = live.changed(committed)
            if committed.get("state") in TERMINAL:  # an ended job changes no more
                loop = asyncio.get_running_loop()
                loop.call_later(LIVE_AFTER_END_SECONDS, self._live.pop, job_id, None)
        async with self._changed:
            self._version += 1
            self._changed.notify_all()


def _take(active: _Active, worker: _Worker, message: WorkerMessage) -> bool:
    """Records one report; True when it ends the worker's task."""
    match message:
        case Progress(fraction=fraction):
            worker.fraction = fraction
        case RunFinished():
            active.runs_done += 1
            active.pending_runs.append(
                {
                    "job_id": active.spec.job_id,
                    "run_index": message.index,
                    "parameters": message.parameters,
                    "file_name": message.file_name,
                    **message.metrics,
                }
            )
        case DetailsKept(index=index, file_name=file_name):
            active.kept[index] = file_name
        case TaskFailed(error=error):
            worker.error = error
            return True
        case TaskDone():
            worker.fraction = 1.0
            return True
    return False


def _rss_or_zero(pid: int | None) -> int:
    try:
        return rss_bytes(pid) if pid is not None else 0
    except OSError:  # gone: the pool notices it is not alive
        return 0


def _now() -> datetime:
    return datetime.now(UTC)
