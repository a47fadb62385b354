"""The backtest service's own settings: `[backtest.jobs]` and `[backtest.datasets]`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
class BacktestSettings:
    jobs: JobSettings = field(default_factory=JobSettings)
    datasets: DatasetSettings = field(default_factory=DatasetSettings)


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
