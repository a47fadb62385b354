"""What the server and a worker process say to each other over their pipe.

Plain frozen dataclasses, pickled by multiprocessing: a `Task` goes to the worker; the
worker answers with `Progress`, `RunFinished` and `DetailsKept` messages and ends each
task with exactly one `TaskDone` or `TaskFailed`, sent in `Batch`es (a sweep's small
runs would otherwise cost a message and a wake-up of the server each). The server
closes its end of the pipe to retire a worker: the worker exits when it reads
end-of-file, and stops a task by SIGTERM (a worker driving a Dask cluster cancels its
cluster tasks on the way out).

A `Task` with a `cluster` runs its runs on that Dask cluster: the worker process is
then only the cluster's client, and reports exactly as if it had run them itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.backtest.jobs.spec import JobSpec

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


@dataclass(frozen=True)
class ClusterTarget:
    """The Dask scheduler a task's runs go to, and how to reach it."""

    address: str
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # The scheduler does not answer: run the runs in this process instead of failing.
    fallback_to_local: bool = False


@dataclass(frozen=True)
class Task:
    """Run `run_indices` of `spec`, writing result files under `results_dir`."""

    spec: JobSpec
    run_indices: tuple[int, ...]
    results_dir: str
    # None: in this worker process.
    cluster: ClusterTarget | None = None


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


async def receive(pipe: Connection) -> tuple[list[WorkerMessage], bool]:
    """The server's read: the messages a worker has sent so far (at least one, unless it
    has closed its end), and whether it has. Waits on the event loop, never blocking it."""
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
