"""What the server and a worker process say to each other over their pipe.

Plain frozen dataclasses, pickled by multiprocessing: a `Task` goes to the worker; the
worker answers with `Progress`, `RunFinished` and `DetailsKept` messages and ends each
task with exactly one `TaskDone` or `TaskFailed`, sent in `Batch`es (a sweep's small
runs would otherwise cost a message and a wake-up of the server each). The server
closes its end of the pipe to retire a worker: the worker exits when it reads
end-of-file.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.backtest.jobs.spec import JobSpec


@dataclass(frozen=True)
class Task:
    """Run `run_indices` of `spec`, writing result files under `results_dir`."""

    spec: JobSpec
    run_indices: tuple[int, ...]
    results_dir: str


@dataclass(frozen=True)
class Progress:
    # Fraction of this worker's share of the job, 0..1.
    fraction: float
    message: str


@dataclass(frozen=True)
class RunFinished:
    index: int
    parameters: dict[str, float]
    metrics: dict[str, float]
    # "" in a sweep: the runs whose details are kept come later as DetailsKept.
    file_name: str


@dataclass(frozen=True)
class DetailsKept:
    """A sweep run whose equity curve and trades were saved."""

    index: int
    file_name: str


@dataclass(frozen=True)
class TaskDone:
    pass


@dataclass(frozen=True)
class TaskFailed:
    error: str


WorkerMessage = Progress | RunFinished | DetailsKept | TaskDone | TaskFailed


@dataclass(frozen=True)
class Batch:
    """What a worker sends over the pipe: its messages since the last batch, in order."""

    messages: tuple[WorkerMessage, ...]
