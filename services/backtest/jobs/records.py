"""A job and its runs as the rest of the service sees them: plain frozen dataclasses,
read from the jobs repository (services/backtest/storage/jobs.py), never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

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


@dataclass(frozen=True)
class RunResult:
    """One run of a job: its parameters, metrics and (if kept) its details file."""

    job_id: str
    run_index: int
    parameters: dict[str, float]
    # The equity curve and trades, relative to the results directory; "" if not kept.
    file_name: str
    total_return: float
    cagr: float
    sharpe_ratio: float
    sortino_ratio: float
    calmar_ratio: float
    max_drawdown: float
    max_drawdown_duration_ms: int
    win_rate: float
    profit_factor: float
    sqn: float
    time_in_market: float
    trades: int
    average_trade_return: float
    buy_and_hold_return: float
    final_equity: float
    periods_per_year: float = 0.0
    liquidated: bool = False
    liquidation_bar: int = -1
    liquidation_time_ms: int = 0
    uncovered_loss: float = 0.0
