"""The backtest service's own settings: `[backtest.jobs]`, `[backtest.datasets]` and
`[backtest.cluster]`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from common.config import ConfigError

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


@dataclass(frozen=True)
class JobSettings:
    # Worker processes at once, across jobs (a sweep uses several), busy and warm together.
    max_workers: int = 2
    # A worker is kept warm this long after its last job, for the next one (a fresh
    # worker costs ~120 ms of spawn and imports); 0: a fresh worker for every job.
    idle_seconds: float = 60.0
    # RSS budget of one worker; a job estimated above it is refused, a worker passing it
    # is stopped and its job fails.
    worker_budget_mib: int = 768
    # Directory of user strategy modules (*.py); empty: built-ins only.
    strategies_dir: str = ""
    # Largest parameter grid a sweep may ask for.
    max_sweep_runs: int = 10_000
    # A sweep keeps the equity curve and trades of this many of its best runs.
    sweep_details_kept: int = 10


@dataclass(frozen=True)
class DatasetSettings:
    # ImportDataset's `path` must lie under this directory; empty: <var_dir>/backtest/import.
    import_dir: str = ""


@dataclass(frozen=True)
class ClusterSettings:
    """A Dask scheduler that runs sweeps instead of the local worker pool.

    Results come back from the cluster as pickles: a scheduler off loopback is accepted
    only over TLS (`tls://` and the three files), or anyone reaching its port could run
    code in the service's workers.
    """

    # "tcp://127.0.0.1:8786" or "tls://host:8786"; empty: sweeps run on the local pool.
    scheduler: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # When the scheduler does not answer, run on the local pool instead of refusing the
    # sweep (UNAVAILABLE, CLUSTER_UNAVAILABLE).
    fallback_to_local: bool = False

    def __post_init__(self) -> None:
        if not self.scheduler:
            return
        where = "backtest.cluster.scheduler"
        parts = urlsplit(self.scheduler if "://" in self.scheduler else f"tcp://{self.scheduler}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None:
            expected = "tcp://host:port or tls://host:port"
            raise ConfigError(where, f"expected {expected}, got {self.scheduler!r}")
        files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if parts.scheme == "tls" and not all(files):
            raise ConfigError(
                "backtest.cluster.tls_ca_file",
                "a tls:// scheduler needs tls_ca_file, tls_cert_file and tls_key_file",
            )
        if parts.scheme == "tcp" and any(files):
            raise ConfigError(where, "TLS files are given: the scheduler must be tls://...")
        if parts.scheme != "tls" and not is_loopback(parts.hostname):
            raise ConfigError(
                where,
                f"{parts.hostname} is not loopback: results come back as pickles, so a "
                "remote scheduler needs tls:// and tls_ca_file, tls_cert_file, tls_key_file",
            )

    @property
    def enabled(self) -> bool:
        return bool(self.scheduler)

    @property
    def address(self) -> str:
        """The scheduler's address with its scheme, as Dask takes it."""
        return self.scheduler if "://" in self.scheduler else f"tcp://{self.scheduler}"


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class BacktestSettings:
    jobs: JobSettings = field(default_factory=JobSettings)
    datasets: DatasetSettings = field(default_factory=DatasetSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)


@dataclass(frozen=True)
class Paths:
    """Where the service keeps its files, all under <var_dir>/backtest."""

    root: Path

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def results(self) -> Path:
        return self.root / "results"

    def make(self) -> None:
        for directory in (self.datasets, self.results):
            directory.mkdir(parents=True, exist_ok=True)
