"""The backtest service's own settings: `[backtest.jobs]` and `[backtest.datasets]`.

Each field's bounds are declared in its type and enforced by `parse_settings`: a bad
value stops the start naming its key (`config error: backtest.jobs.max_workers: ...`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from common.config import NonNegativeFloat, NonNegativeInt, PositiveInt, parse_settings

if TYPE_CHECKING:  # workers import these settings and need not load the server's modules
    from common.service import Runtime


@dataclass(frozen=True)
class JobSettings:
    # Worker processes at once, across jobs (a sweep uses several), busy and warm together.
    # 0 would leave every job queued for ever.
    max_workers: PositiveInt = 2
    # A worker is kept warm this long after its last job, for the next one (a fresh
    # worker costs ~120 ms of spawn and imports); 0: a fresh worker for every job.
    idle_seconds: NonNegativeFloat = 60.0
    # RSS budget of one worker; a job estimated above it is refused, a worker passing it
    # is stopped and its job fails.
    worker_budget_mib: PositiveInt = 768
    # Directory of user strategy modules (*.py); empty: built-ins only.
    strategies_dir: str = ""
    # Largest parameter grid a sweep may ask for.
    max_sweep_runs: PositiveInt = 10_000
    # A sweep keeps the equity curve and trades of this many of its best runs.
    sweep_details_kept: NonNegativeInt = 10


@dataclass(frozen=True)
class DatasetSettings:
    # ImportDataset's `path` must lie under this directory; empty: <var_dir>/backtest/import.
    import_dir: str = ""


@dataclass(frozen=True)
class BacktestSettings:
    jobs: JobSettings = field(default_factory=JobSettings)
    datasets: DatasetSettings = field(default_factory=DatasetSettings)


def load_settings(runtime: Runtime) -> BacktestSettings:
    """Parses `[backtest.*]`; a bad value raises ConfigError naming the key."""
    return parse_settings(BacktestSettings, runtime.settings.extensions, "backtest.")


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
