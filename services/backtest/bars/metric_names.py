"""The metrics of a run (computed in services.backtest.bars.metrics) by name: numpy-free,
so the server checks a request's rank_by and reads stored runs without loading numpy
(only the workers compute)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import get_type_hints


@dataclass(frozen=True)
class Metrics:
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
    # Liquidation (bars/engine.py): the bar (-1: none) and its time, the loss beyond equity.
    liquidated: bool = False
    liquidation_bar: int = -1
    liquidation_time_ms: int = 0
    uncovered_loss: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(asdict(self))


_DESCRIPTIVE = (
    "periods_per_year",
    "liquidated",
    "liquidation_bar",
    "liquidation_time_ms",
    "uncovered_loss",
)
# The metrics a sweep can be ranked by (highest first).
RANKABLE = tuple(name for name in Metrics.__dataclass_fields__ if name not in _DESCRIPTIVE)
# The ratios and amounts among them (the rest are counts and durations).
FLOAT_METRICS = tuple(name for name, kind in get_type_hints(Metrics).items() if kind is float)
