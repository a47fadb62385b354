"""The job manager: admission, a queue, worker processes, progress, cancellation.

Work never runs on the event loop: each job runs in worker processes (a sweep in
several, its runs dealt round-robin) taken from a pool that keeps them warm between
jobs (`pool`); they report through pipes, read here with `loop.add_reader`. The
database row is the job's truth; watchers (StreamJob) wake on every change, without
polling and without missing one. Workers are watched for RSS and stopped above their
budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, delete, desc, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.errors import FailedPrecondition, NotFound, ResourceExhausted
from common.memory import MIB, MemoryGuard, rss_bytes
from services.backtest.datasets.store import DatasetStore
from services.backtest.jobs import requests
from services.backtest.jobs.pool import PooledWorker, WorkerPool
from services.backtest.jobs.protocol import (
    Batch,
    DetailsKept,
    Progress,
    RunFinished,
    Task,
    TaskDone,
    TaskFailed,
    WorkerMessage,
)
from services.backtest.jobs.spec import JobSpec
from services.backtest.settings import JobSettings
from services.backtest.storage.models import JobRow, RunRow
from strategies.base import StrategyDefinition

log = logging.getLogger("edgequant.backtest.jobs")
# Jobs and runs are written through their tables (Core): the ORM's bulk insert and
# update cost more than a small sweep's runs themselves.
_JOBS: Table = JobRow.__table__  # type: ignore[assignment]
_RUNS: Table = RunRow.__table__  # type: ignore[assignment]

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
# A worker's fixed cost: the interpreter and numpy (bar), plus hftbacktest and numba (tick).
BAR_WORKER_BASE_BYTES = 80 * MIB
TICK_WORKER_BASE_BYTES = 640 * MIB  # measured ~605 MiB peak: numba/LLVM compiling
# Float64 arrays as long as the candles that one bar run holds at its peak.
BAR_ARRAYS_PER_CANDLE = 24
# A worker still holding more than this after a task (memory the allocator kept, a tick
# engine's numba) is not kept warm.
WARM_WORKER_MAX_BYTES = BAR_WORKER_BASE_BYTES
# hftbacktest's events (64 bytes each) decompressed from the stored .npz, with room.
TICK_BYTES_PER_STORED_BYTE = 12
PROGRESS_INTERVAL = 0.2
# A sweep spreads over workers not yet warm only when it is bigger than this (runs times
# candles): a fresh worker costs about as much as the engine spends on ~2M candles.
SPREAD_COLD_MIN_CANDLE_RUNS = 2_000_000
STOP_GRACE_SECONDS = 2.0
# An ended job's row stays in memory this long, for the watchers still to wake.
LIVE_AFTER_END_SECONDS = 10.0
MEMORY_CHECK_SECONDS = 0.25


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

    @property
    def pipe(self) -> Connection:
        return self.pooled.pipe


@dataclass
class _Active:
    spec: JobSpec
    workers: list[_Worker] = field(default_factory=list)
    runs_done: int = 0
    # Runs reported and not yet stored, as `runs` table rows.
    pending_runs: list[dict[str, Any]] = field(default_factory=list)
    # Sweep runs whose details a worker saved: run index -> file name.
    kept: dict[int, str] = field(default_factory=dict)
    cancelled: bool = False
    over_budget: str = ""
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class JobNotFound(NotFound):
    """No job with that id: see ListJobs."""


class JobManager:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        datasets: DatasetStore,
        results_dir: Path,
        settings: JobSettings,
        memory: MemoryGuard,
    ) -> None:
        self.sessions = sessions
        self.datasets = datasets
        self.results_dir = results_dir
        self.settings = settings
        self.memory = memory
        self.pool = WorkerPool(settings.max_workers, settings.idle_seconds)
        self._queue: deque[JobSpec] = deque()
        # Candles of each queued job's dataset: how much work it is.
        self._candles: dict[str, int] = {}
        self._active: dict[str, _Active] = {}
        # Bumped after every committed job change: a watcher that read the job at version
        # v waits until the version differs, so a change landing between its read and
        # its wait is never lost.
        self._version = 0
        self._changed = asyncio.Condition()
        # The rows of the jobs not yet ended (or just ended), as last committed: watchers
        # read them here rather than from the database. Replaced on change, never changed
        # in place: a row handed out stays as it was read.
        self._live: dict[str, JobRow] = {}
        # Test seam: awaited by watch() between its read and its wait.
        self.before_watch_wait: Callable[[str], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Jobs cut short by the last stop are marked failed; their workers are gone."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.state.in_((QUEUED, RUNNING)))
                .values(state=FAILED, error="interrupted: the service stopped", end_time=_now())
            )

    async def stop(self) -> None:
        self._queue.clear()
        self._candles.clear()
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

    async def submit(self, request: requests.SubmitRequest, strategy: StrategyDefinition) -> JobRow:
        dataset = await self.datasets.get(request.dataset_id)
        requests.check_dataset(dataset, request.engine)
        runs, skipped = requests.expand_runs(request, strategy, self.settings.max_sweep_runs)
        rank_by = requests.check_rank_by(request.rank_by) if request.grid else ""
        self._admit(request.engine, dataset.rows, dataset.size_bytes)
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
        row = JobRow(
            job_id=job_id,
            state=QUEUED,
            engine=request.engine,
            strategy=strategy.name,
            dataset_id=dataset.dataset_id,
            spec=spec.to_json(),
            runs_total=len(runs),
            runs_done=0,
            progress=0.0,
            message=f"{skipped} grid points skipped: they break a parameter constraint"
            if skipped
            else "",
            error="",
            rank_by=rank_by,
            submit_time=_now(),
        )
        async with self.sessions.begin() as session:
            session.add(row)
        self._live[job_id] = row
        self._queue.append(spec)
        self._candles[job_id] = dataset.rows
        self._schedule()
        return row

    def _admit(self, engine: str, rows: int, size_bytes: int) -> None:
        """Refuses a job whose worker would not fit its budget, before it starts."""
        if engine == "bar":
            estimate = BAR_WORKER_BASE_BYTES + rows * 8 * BAR_ARRAYS_PER_CANDLE
        else:
            estimate = TICK_WORKER_BASE_BYTES + size_bytes * TICK_BYTES_PER_STORED_BYTE
        budget = self.settings.worker_budget_mib * MIB
        if estimate > budget:
            raise ResourceExhausted(
                f"a {engine} worker for this dataset needs about {estimate // MIB} MiB, over the "
                f"worker budget of {self.settings.worker_budget_mib} MiB "
                "(backtest.jobs.worker_budget_mib); use a shorter dataset or raise the budget",
                reason="WORKER_MEMORY_BUDGET",
                metadata={
                    "estimated_mib": str(estimate // MIB),
                    "budget_mib": str(self.settings.worker_budget_mib),
                },
            )

    # --- running --------------------------------------------------------------------

    def _busy_workers(self) -> int:
        return sum(not worker.done for job in self._active.values() for worker in job.workers)

    def _schedule(self) -> None:
        while self._queue and self._busy_workers() < self.settings.max_workers:
            spec = self._queue.popleft()
            candle_runs = self._candles.pop(spec.job_id, 0) * len(spec.runs)
            workers = min(self.settings.max_workers - self._busy_workers(), len(spec.runs))
            warm = max(1, min(workers, self.pool.idle_count))
            if candle_runs < SPREAD_COLD_MIN_CANDLE_RUNS and warm < workers:
                # Small: it runs on the warm workers at once; more warm up for the next.
                self._launch(spec, warm)
                self.pool.warm(workers - warm)
            else:
                self._launch(spec, max(1, workers))

    def _launch(self, spec: JobSpec, worker_count: int) -> None:
        active = _Active(spec)
        self._active[spec.job_id] = active
        indices = [run.index for run in spec.runs]
        for share in (indices[k::worker_count] for k in range(worker_count)):
            pooled = self.pool.acquire()
            # A worker that died since it went idle (and before the pool noticed) fails
            # this job at its first read, like any crash.
            with contextlib.suppress(OSError):
                pooled.pipe.send(Task(spec, tuple(share), str(self.results_dir)))
            active.workers.append(_Worker(pooled, runs=len(share)))
        self._spawn(self._run(active))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, active: _Active) -> None:
        job_id = active.spec.job_id
        await self._update(job_id, state=RUNNING, start_time=_now(), message="started")
        watchdog = asyncio.get_running_loop().create_task(self._watch_memory(active))
        try:
            await asyncio.gather(*(self._follow(active, worker) for worker in active.workers))
        finally:
            watchdog.cancel()
            await self._finish(active)
            del self._active[job_id]
            active.finished.set()
            self._schedule()

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
            messages, closed = await _receive(worker.pipe)
            for message in messages:
                ended = ended or self._take(active, worker, message)
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

    @staticmethod
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

    async def _write_progress(self, active: _Active) -> None:
        total = len(active.spec.runs)
        progress = sum(worker.fraction * worker.runs for worker in active.workers) / total
        rows, active.pending_runs = active.pending_runs, []
        await self._update(
            active.spec.job_id,
            rows,
            progress=min(progress, 1.0),
            runs_done=active.runs_done,
            message=f"{active.runs_done}/{total} runs",
        )

    async def _watch_memory(self, active: _Active) -> None:
        budget = self.settings.worker_budget_mib * MIB
        while True:
            await asyncio.sleep(MEMORY_CHECK_SECONDS)
            for worker in active.workers:
                pid = worker.pooled.pid
                if worker.done or pid is None:
                    continue
                with contextlib.suppress(OSError):
                    if rss_bytes(pid) > budget:
                        active.over_budget = (
                            f"a worker passed its memory budget of "
                            f"{self.settings.worker_budget_mib} MiB and was stopped"
                        )
                        self._terminate(active)

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
        total = len(spec.runs)
        progress = sum(worker.fraction * worker.runs for worker in active.workers) / total
        # One transaction: the last runs, a sweep's pruning and the job's end.
        async with self.sessions.begin() as session:
            if state == CANCELLED:
                await session.execute(delete(RunRow).where(RunRow.job_id == spec.job_id))
            elif rows:
                await session.execute(_RUNS.insert(), rows)
            if state == SUCCEEDED and spec.is_sweep:
                await self._prune_sweep(session, spec, active.kept)
            written = await self._write_job(
                session,
                spec.job_id,
                state=state,
                error=error,
                end_time=_now(),
                progress=1.0 if state == SUCCEEDED else min(progress, 1.0),
                runs_done=active.runs_done,
                message={SUCCEEDED: "done", CANCELLED: "cancelled", FAILED: "failed"}[state],
            )
        await self._notify(spec.job_id, written)

    async def _prune_sweep(
        self, session: AsyncSession, spec: JobSpec, kept: dict[int, str]
    ) -> None:
        """Keeps the curve and trades of the best `keep_details` runs of a sweep (each
        worker saved its own best ones)."""
        column = getattr(RunRow, spec.rank_by)
        best = set(
            await session.scalars(
                select(RunRow.run_index)
                .where(RunRow.job_id == spec.job_id)
                .order_by(desc(column), RunRow.run_index)
                .limit(spec.keep_details)
            )
        )
        named = [
            {"run_job_id": spec.job_id, "run_index_": index, "kept_file": file_name}
            for index, file_name in kept.items()
            if index in best
        ]
        if named:
            await session.execute(
                _RUNS.update()
                .where(
                    _RUNS.c.job_id == bindparam("run_job_id"),
                    _RUNS.c.run_index == bindparam("run_index_"),
                )
                .values(file_name=bindparam("kept_file")),
                named,
            )
        for index, file_name in kept.items():
            if index not in best:
                (self.results_dir / file_name).unlink(missing_ok=True)

    # --- queries and control --------------------------------------------------------

    async def get(self, job_id: str) -> JobRow:
        async with self.sessions() as session:
            row = await session.get(JobRow, job_id)
        if row is None:
            raise JobNotFound(f"no job {job_id!r}", reason="JOB_NOT_FOUND")
        return row

    async def page(self, states: list[str], offset: int, limit: int) -> list[JobRow]:
        query = select(JobRow).order_by(desc(JobRow.submit_time), JobRow.job_id)
        if states:
            query = query.where(JobRow.state.in_(states))
        async with self.sessions() as session:
            return list(await session.scalars(query.offset(offset).limit(limit)))

    async def cancel(self, job_id: str) -> JobRow:
        row = await self.get(job_id)
        if row.state in (SUCCEEDED, FAILED):
            raise FailedPrecondition(
                f"job {job_id} has already {row.state}", reason="JOB_ALREADY_FINISHED"
            )
        queued = next((spec for spec in self._queue if spec.job_id == job_id), None)
        if queued is not None:
            self._queue.remove(queued)
            self._candles.pop(job_id, None)
            await self._update(job_id, state=CANCELLED, end_time=_now(), message="cancelled")
        active = self._active.get(job_id)
        if active is not None:
            active.cancelled = True
            self._terminate(active)
            await active.finished.wait()
        return await self.get(job_id)

    def _terminate(self, active: _Active) -> None:
        """Stops the job's workers still on its task (never one already handed back to
        the pool: it may be running another job by now)."""
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

    async def watch(self, job_id: str) -> AsyncIterator[JobRow]:
        """The job now, then again on every change, until it ends."""
        seen: tuple[object, ...] | None = None
        while True:
            version = self._version  # before the read: any later change differs from it
            live = self._live.get(job_id)
            row = live if live is not None else await self.get(job_id)
            snapshot = (row.state, row.progress, row.runs_done, row.message)
            if snapshot != seen:
                seen = snapshot
                yield row
            if row.state in TERMINAL:
                return
            if self.before_watch_wait is not None:
                await self.before_watch_wait(job_id)
            async with self._changed:
                while self._version == version:
                    await self._changed.wait()

    async def runs(self, job_id: str, rank_by: str) -> list[RunRow]:
        async with self.sessions() as session:
            query = select(RunRow).where(RunRow.job_id == job_id)
            if rank_by:
                query = query.order_by(desc(getattr(RunRow, rank_by)), RunRow.run_index)
            return list(await session.scalars(query))

    async def run(self, job_id: str, run_index: int) -> RunRow | None:
        async with self.sessions() as session:
            return await session.get(RunRow, (job_id, run_index))

    async def _update(
        self, job_id: str, runs: list[dict[str, Any]] | None = None, **values: Any
    ) -> None:
        """Changes the job (and adds `runs`) in one transaction, then wakes watchers."""
        async with self.sessions.begin() as session:
            if runs:
                await session.execute(_RUNS.insert(), runs)
            written = await self._write_job(session, job_id, **values)
        await self._notify(job_id, written)

    @staticmethod
    async def _write_job(session: AsyncSession, job_id: str, **values: Any) -> dict[str, Any]:
        values = {name: value for name, value in values.items() if value is not None}
        await session.execute(_JOBS.update().where(_JOBS.c.job_id == job_id).values(**values))
        return values

    async def _notify(self, job_id: str, committed: dict[str, Any]) -> None:
        """After a change is committed: the live row follows it, every watcher wakes."""
        live = self._live.get(job_id)
        if live is not None:
            self._live[job_id] = _changed_copy(live, committed)
            if committed.get("state") in TERMINAL:  # an ended job changes no more
                loop = asyncio.get_running_loop()
                loop.call_later(LIVE_AFTER_END_SECONDS, self._live.pop, job_id, None)
        async with self._changed:
            self._version += 1
            self._changed.notify_all()


async def _receive(pipe: Connection) -> tuple[list[WorkerMessage], bool]:
    """The messages a worker has sent so far (at least one, unless it has closed its
    end), and whether it has."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(pipe.fileno(), wake)
    try:
        await readable
    finally:
        loop.remove_reader(pipe.fileno())
    messages: list[WorkerMessage] = []
    while True:
        try:
            batch: Batch = pipe.recv()
        except (EOFError, OSError):
            return messages, True
        messages += batch.messages
        if not pipe.poll():
            return messages, False


def _changed_copy(row: JobRow, values: dict[str, Any]) -> JobRow:
    columns = {column.key: getattr(row, column.key) for column in _JOBS.columns}
    return JobRow(**{**columns, **values})


def _rss_or_zero(pid: int | None) -> int:
    try:
        return rss_bytes(pid) if pid is not None else 0
    except OSError:  # gone: the pool notices it is not alive
        return 0


def _now() -> datetime:
    return datetime.now(UTC)
