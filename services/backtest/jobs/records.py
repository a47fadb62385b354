"""A job and its runs as the rest of the service sees them: plain frozen dataclasses,
read from the jobs repository (services/backtest/storage/jobs.py), never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.backtest.bars.metric_names import Metrics

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)


@dataclass(frozen=True)
class Job:
    job_id: str
    # QUEUED, RUNNING, or one of TERMINAL.
    state: str
    engine: str  # "bar" | "tick"
    strategy: str
    dataset_id: str
    runs_total: int
    runs_done: int
    progress: float
    message: str
    error: str
    # The metric a sweep's runs are ranked by; "" for a single run.
    rank_by: str
    submit_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL

    def changed(self, values: dict[str, Any]) -> Job:
        return replace(self, **values)


@dataclass(frozen=True, kw_only=True)
class RunResult(Metrics):
    """One run of a job: its parameters, its metrics (bars.metric_names.Metrics) and, if
    kept, its details file."""

    job_id: str
    run_index: int
    parameters: dict[str, float]
    # The equity curve and trades, relative to the results directory; "" if not kept.
    file_name: str
