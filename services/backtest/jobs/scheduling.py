"""Scheduling: the queue of admitted jobs and how many worker processes each gets.

Jobs start in submission order while fewer than `max_workers` processes are busy
(across jobs: a sweep on the local pool takes several). A small job does not wait for
cold workers to start: it runs on the warm ones at once, and more are warmed for the
next job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from services.backtest.jobs.backend import Backend
from services.backtest.jobs.spec import JobSpec

# A sweep spreads over workers not yet warm only when it is bigger than this (runs times
# candles): a fresh worker costs about as much as the engine spends on ~2M candles.
SPREAD_COLD_MIN_CANDLE_RUNS = 2_000_000


@dataclass(frozen=True)
class Queued:
    spec: JobSpec
    backend: Backend
    # Candles of the job's dataset: how much work each of its runs is.
    candles: int


@dataclass(frozen=True)
class Launch:
    queued: Queued
    # Processes the job runs in now.
    processes: int
    # Processes to warm beside it, for the next job.
    warm: int


class JobQueue:
    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._waiting: deque[Queued] = deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def append(self, queued: Queued) -> None:
        self._waiting.append(queued)

    def remove(self, job_id: str) -> bool:
        """Takes a job out of the queue; False if it is not waiting."""
        for queued in self._waiting:
            if queued.spec.job_id == job_id:
                self._waiting.remove(queued)
                return True
        return False

    def clear(self) -> None:
        self._waiting.clear()

    def due(self, busy: int, idle: int) -> Iterator[Launch]:
        """The jobs that start now, given `busy` processes and `idle` warm ones; each
        taken from the queue as it is yielded (the caller launches it before the next)."""
        while self._waiting and busy < self.max_workers:
            queued = self._waiting.popleft()
            free = self.max_workers - busy
            wanted = queued.backend.processes(queued.spec, free)
            warm = max(1, min(wanted, idle))
            candle_runs = queued.candles * len(queued.spec.runs)
            if candle_runs < SPREAD_COLD_MIN_CANDLE_RUNS and warm < wanted:
                launch = Launch(queued, warm, wanted - warm)
            else:
                launch = Launch(queued, wanted, 0)
            busy += launch.processes
            idle = max(0, idle - launch.processes) + launch.warm
            yield launch
