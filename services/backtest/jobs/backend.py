"""Where a job's runs execute: the `Backend` interface and its two engines.

Every job runs in worker processes from the warm pool (`pool`), which report through
the typed pipe protocol (`protocol`). A backend decides only how a job becomes tasks
for those processes:

- `LocalBackend` deals the runs round-robin to as many workers as are free, which run
  them themselves;
- `DaskBackend` hands a sweep to one worker that drives a Dask cluster (`cluster`): the
  Dask client lives in that process, never in the service (whose memory budget it
  would eat), and it reports as if it had run the runs itself.

So progress, cancel (SIGTERM to the process), the memory watchdog and results are the
same whichever engine runs a job; another engine (Ray) is another backend and another
driver module, with nothing in the manager changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol
from urllib.parse import urlsplit

from common.errors import Unavailable
from services.backtest.jobs.protocol import ClusterTarget, Task
from services.backtest.jobs.spec import JobSpec
from services.backtest.reasons import Reason
from services.backtest.settings import ClusterSettings

# How long SubmitBacktest waits for the scheduler to accept a connection.
REACH_SECONDS = 2.0


class Backend(Protocol):
    name: str

    async def check(self) -> None:
        """Raises Unavailable when the engine cannot take a job now."""

    def processes(self, spec: JobSpec, free: int) -> int:
        """How many of the `free` (>= 1) pool processes the job takes."""

    def tasks(self, spec: JobSpec, processes: int, results_dir: str) -> list[Task]:
        """The job as one task per process."""


class LocalBackend:
    name = "local"

    async def check(self) -> None:
        return None

    def processes(self, spec: JobSpec, free: int) -> int:
        return max(1, min(free, len(spec.runs)))

    def tasks(self, spec: JobSpec, processes: int, results_dir: str) -> list[Task]:
        indices = [run.index for run in spec.runs]
        return [Task(spec, tuple(indices[k::processes]), results_dir) for k in range(processes)]


class DaskBackend:
    name = "dask"

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.target = ClusterTarget(
            address=settings.address,
            tls_ca_file=settings.tls_ca_file,
            tls_cert_file=settings.tls_cert_file,
            tls_key_file=settings.tls_key_file,
            fallback_to_local=settings.fallback_to_local,
        )

    async def check(self) -> None:
        """The scheduler accepts a connection (a TCP connect: the service never imports
        Dask; the driving worker does the TLS handshake)."""
        parts = urlsplit(self.target.address)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, parts.port), REACH_SECONDS
            )
        except (OSError, TimeoutError) as error:
            raise Unavailable(
                f"the Dask scheduler at {self.target.address} does not answer "
                f"({error or 'timeout'}); start it, or set backtest.cluster.fallback_to_local",
                reason=Reason.CLUSTER_UNAVAILABLE,
                metadata={"scheduler": self.target.address},
            ) from error
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    def processes(self, spec: JobSpec, free: int) -> int:  # noqa: ARG002 - one driver
        return 1

    def tasks(self, spec: JobSpec, processes: int, results_dir: str) -> list[Task]:  # noqa: ARG002
        indices = tuple(run.index for run in spec.runs)
        return [Task(spec, indices, results_dir, cluster=self.target)]
