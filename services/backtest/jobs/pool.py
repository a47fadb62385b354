"""Worker processes kept warm between jobs.

A fresh worker costs a spawn and the imports of numpy and the engines (~120 ms), more
than a small job itself. The pool keeps a worker that finished its task cleanly for
`idle_seconds` and hands it the next task; an idle stack holds none after that. The
pool never holds more processes than `max_workers`, busy and idle together, so the
warm ones stay inside the workers' memory budget. A worker that was killed (cancel,
memory watchdog), failed or crashed is never reused: the next task gets a fresh one.
Which workers may go back warm is the job manager's call (bar jobs only, and only
below a resident size).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

# How long a retired worker may take to exit by itself before it is killed.
EXIT_GRACE_SECONDS = 2.0


def _serve(pipe: Connection) -> None:
    """A worker's entry point. The worker module (numpy, the engines) is imported in the
    worker only: spawn pickles this function by name, and the server never loads numpy."""
    from services.backtest.jobs.worker import serve  # noqa: PLC0415 - worker side only

    serve(pipe)


@dataclass(eq=False)
class PooledWorker:
    process: BaseProcess
    # The server's end of the worker's duplex pipe.
    pipe: Connection
    idle_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid


class WorkerPool:
    def __init__(self, max_workers: int, idle_seconds: float) -> None:
        self.max_workers = max_workers
        self.idle_seconds = idle_seconds
        # Most recently used last: it is handed out first, so the others age out.
        self._idle: list[PooledWorker] = []
        self._busy: set[PooledWorker] = set()
        self._exits: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @property
    def idle_pids(self) -> list[int]:
        return [worker.pid for worker in self._idle if worker.pid is not None]

    def acquire(self) -> PooledWorker:
        """A warm worker if one is idle and alive, else a freshly spawned one."""
        while self._idle:
            worker = self._idle.pop()
            self._stop_idling(worker)
            if worker.process.is_alive():
                self._busy.add(worker)
                return worker
            self._retire(worker)
        if len(self._busy) >= self.max_workers:
            raise RuntimeError("worker pool exhausted: the scheduler asked for too many")
        worker = self._start()
        self._busy.add(worker)
        return worker

    def warm(self, count: int) -> None:
        """Starts up to `count` more workers, idle, inside `max_workers`."""
        if self._closed or self.idle_seconds <= 0:
            return
        room = self.max_workers - len(self._busy) - len(self._idle)
        for _ in range(min(count, room)):
            # Handed out after the warm ones: it is still importing.
            self._make_idle(self._start(), last=True)

    async def release(self, worker: PooledWorker, *, reusable: bool) -> None:
        """Back to the pool after a task; a worker not reusable is stopped (awaited)."""
        self._busy.discard(worker)
        if reusable and self.idle_seconds > 0 and not self._closed and worker.process.is_alive():
            self._make_idle(worker)
            return
        await _stop(worker)

    def _make_idle(self, worker: PooledWorker, *, last: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if last:
            self._idle.insert(0, worker)
        else:
            self._idle.append(worker)
        worker.idle_timer = loop.call_later(self.idle_seconds, self._reap, worker)
        # An idle worker has nothing to say: readable means it died.
        loop.add_reader(worker.pipe.fileno(), self._reap, worker)

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            worker = self._idle.pop()
            self._stop_idling(worker)
            self._retire(worker)
        if self._exits:
            await asyncio.gather(*self._exits, return_exceptions=True)

    def _start(self) -> PooledWorker:
        # multiprocessing is ~350 KiB of heap an idle server never uses: the first job
        # imports it.
        import multiprocessing  # noqa: PLC0415

        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=_serve, args=(theirs,), name="backtest-worker", daemon=True
        )
        process.start()
        theirs.close()
        return PooledWorker(process, ours)

    def _reap(self, worker: PooledWorker) -> None:
        """Idle too long, or died while idle."""
        if worker in self._idle:
            self._idle.remove(worker)
            self._stop_idling(worker)
            self._retire(worker)

    def _stop_idling(self, worker: PooledWorker) -> None:
        if worker.idle_timer is not None:
            worker.idle_timer.cancel()
            worker.idle_timer = None
        with contextlib.suppress(OSError, ValueError):
            asyncio.get_running_loop().remove_reader(worker.pipe.fileno())

    def _retire(self, worker: PooledWorker) -> None:
        task = asyncio.get_running_loop().create_task(_stop(worker))
        self._exits.add(task)
        task.add_done_callback(self._exits.discard)


async def _stop(worker: PooledWorker) -> None:
    """Closes the pipe (a worker exits at end-of-file) and reaps the process, killing it
    if it does not exit in time (it may be stuck in a task)."""
    worker.pipe.close()
    await asyncio.to_thread(worker.process.join, EXIT_GRACE_SECONDS)
    if worker.process.is_alive():
        worker.process.kill()
        await asyncio.to_thread(worker.process.join)
