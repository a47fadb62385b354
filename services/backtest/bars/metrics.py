"""Performance metrics of a run, from its equity curve and trades (numpy only).

Conventions (a crypto market trades every day):
- Returns are per bar, annualised with the number of bars in 365 days; risk-free rate 0.
- Sharpe = mean / std (ddof=1) * sqrt(bars per year); Sortino uses the downside
  deviation sqrt(mean(min(r, 0)^2)) instead of the std.
- CAGR over the calendar span of the data; Calmar = CAGR / max drawdown.
- Max drawdown is a positive fraction of the running peak; its duration is the longest
  time from a peak to the first recovery of it (or to the end, if never recovered).
- Win rate, profit factor (gross profit / gross loss), SQN (sqrt(n) * mean / std of
  trade PnL, ddof=1) and the average trade return are over closed trades, fees included.
- Time in market: the fraction of bars that close with a position open.
Undefined ratios (no trades, no losses, zero variance) are 0, except a profit factor
with profits and no losses, which is +inf.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import get_type_hints

import numpy as np

from services.backtest.bars.candles import FloatArray, IntArray

MS_PER_YEAR = 365 * 86_400_000


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

    def as_dict(self) -> dict[str, float]:
        return dict(asdict(self))


# The metrics a sweep can be ranked by (highest first).
RANKABLE = tuple(Metrics.__dataclass_fields__)
# The ratios and amounts among them (the rest are counts and durations).
FLOAT_METRICS = tuple(name for name, kind in get_type_hints(Metrics).items() if kind is float)


def compute(
    *,
    initial_cash: float,
    time_ms: IntArray,
    close: FloatArray,
    equity: FloatArray,
    position: FloatArray,
    pnl: FloatArray,
    trade_returns: FloatArray,
    bar_ms: int,
) -> Metrics:
    final = float(equity[-1])
    span_ms = max(int(time_ms[-1] - time_ms[0]) + bar_ms, 1)
    years = span_ms / MS_PER_YEAR
    total_return = final / initial_cash - 1.0
    cagr = (final / initial_cash) ** (1.0 / years) - 1.0 if final > 0 else -1.0
    returns = np.empty(len(equity))
    returns[0] = equity[0] / initial_cash
    np.divide(equity[1:], equity[:-1], out=returns[1:])
    returns -= 1.0
    bars_per_year = MS_PER_YEAR / bar_ms
    drawdown, duration_ms = _drawdown(time_ms, equity)
    return Metrics(
        total_return=total_return,
        cagr=cagr,
        sharpe_ratio=_sharpe(returns, bars_per_year),
        sortino_ratio=_sortino(returns, bars_per_year),
        calmar_ratio=cagr / drawdown if drawdown > 0 else 0.0,
        max_drawdown=drawdown,
        max_drawdown_duration_ms=duration_ms,
        win_rate=float(np.mean(pnl > 0)) if len(pnl) else 0.0,
        profit_factor=_profit_factor(pnl),
        sqn=_sqn(pnl),
        time_in_market=np.count_nonzero(position) / len(position),
        trades=len(pnl),
        average_trade_return=float(np.mean(trade_returns)) if len(trade_returns) else 0.0,
        buy_and_hold_return=float(close[-1] / close[0] - 1.0),
        final_equity=final,
    )


def _sharpe(returns: FloatArray, bars_per_year: float) -> float:
    if len(returns) < 2:
        return 0.0
    deviation = float(np.std(returns, ddof=1))
    return float(np.mean(returns)) / deviation * math.sqrt(bars_per_year) if deviation > 0 else 0.0


def _sortino(returns: FloatArray, bars_per_year: float) -> float:
    if len(returns) < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return float(np.mean(returns)) / downside * math.sqrt(bars_per_year) if downside > 0 else 0.0


def _drawdown(time_ms: IntArray, equity: FloatArray) -> tuple[float, int]:
    peaks = np.maximum.accumulate(equity)
    depth = float((1.0 - equity / peaks).max(initial=0.0))
    # A drawdown lasts from a bar at its running peak to the next such bar (or the end).
    at_peak = np.flatnonzero(equity >= peaks)
    ends = np.append(at_peak[1:], len(equity) - 1)
    lasted = np.where(ends - at_peak > 1, time_ms[ends] - time_ms[at_peak], 0)
    return depth, int(lasted.max(initial=0))


def _profit_factor(pnl: FloatArray) -> float:
    gross_profit = float(pnl[pnl > 0].sum())
    gross_loss = float(-pnl[pnl < 0].sum())
    if gross_loss > 0:
        return gross_profit / gross_loss
    return math.inf if gross_profit > 0 else 0.0


def _sqn(pnl: FloatArray) -> float:
    if len(pnl) < 2:
        return 0.0
    deviation = float(np.std(pnl, ddof=1))
    return math.sqrt(len(pnl)) * float(np.mean(pnl)) / deviation if deviation > 0 else 0.0
