"""Performance metrics of a run, from its equity curve and trades (numpy only).

With E_0 the initial cash, E_t the equity at bar t's close (t = 1..N; the curve ends at
the liquidation bar if the run was liquidated), r_t = E_t / E_{t-1} - 1 the per-bar
returns (E_0 before the first bar), risk-free rate 0, and P the periods per year:

- total_return = E_N / E_0 - 1.
- cagr = (E_N / E_0) ** (1 / Y) - 1, Y = (last time - first time + one bar) / 365 days
  (calendar years, whatever the market's calendar); -1 when E_N <= 0.
- sharpe_ratio = mean(r) / std(r, ddof=1) * sqrt(P).
- sortino_ratio = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(P).
- max_drawdown = max_t (1 - E_t / max_{s<=t} E_s), a positive fraction; its duration is
  the longest time from a bar at a running peak to the next such bar (or the end).
- calmar_ratio = cagr / max_drawdown.
- Over closed trades (fees included; a trade left open at the end is not one):
  win_rate = share with pnl > 0; profit_factor = sum of profits / sum of losses;
  sqn = sqrt(n) * mean(pnl) / std(pnl, ddof=1); average_trade_return = mean of pnl over
  entry notional.
- time_in_market = share of bars closing with a position open.
- buy_and_hold_return = last close / first close - 1 (the whole dataset).
Undefined ratios (no trades, no losses, zero variance) are 0, except a profit factor
with profits and no losses, which is +inf.

P (`periods_per_year`): given in the settings, or by the dataset's calendar, from the
median bar spacing S of the data:
- monthly bars (S >= 28 days): 12;
- continuous calendar (crypto, the default), or weekly bars: 365 days / S (1m:
  525,600; 1h: 8,760; 1d: 365; 1w: 52.14);
- trading-days calendar (stocks, FX), bars shorter than a week: 252 * the median
  number of bars per UTC date (daily bars: 252; hourly FX: 252 * 24).
"""

from __future__ import annotations

import math

import numpy as np

from services.backtest.bars.metric_names import Metrics
from services.backtest.bars.settings import Calendar
from strategies.candles import FloatArray, IntArray

DAY_MS = 86_400_000
MS_PER_YEAR = 365 * DAY_MS
TRADING_DAYS_PER_YEAR = 252
MONTHS_PER_YEAR = 12


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
    periods_per_year: float = 0.0,
) -> Metrics:
    """The metrics above; `close` is the whole dataset's (buy and hold), the other
    arrays end where the run ended. `periods_per_year` 0 means 365 days / `bar_ms`."""
    final = float(equity[-1])
    span_ms = max(int(time_ms[-1] - time_ms[0]) + bar_ms, 1)
    years = span_ms / MS_PER_YEAR
    total_return = final / initial_cash - 1.0
    cagr = (final / initial_cash) ** (1.0 / years) - 1.0 if final > 0 else -1.0
    returns = np.empty(len(equity))
    returns[0] = equity[0] / initial_cash
    np.divide(equity[1:], equity[:-1], out=returns[1:])
    returns -= 1.0
    bars_per_year = periods_per_year if periods_per_year > 0 else MS_PER_YEAR / bar_ms
    time_ms = time_ms[: len(equity)]
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
        periods_per_year=bars_per_year,
    )


def periods_per_year(time_ms: IntArray, calendar: Calendar, given: float = 0.0) -> float:
    """P of the module's docstring: `given` if positive, else from the calendar and the
    median bar spacing."""
    if given > 0:
        return given
    if len(time_ms) < 2:
        return MS_PER_YEAR / 60_000
    spacing = float(np.median(np.diff(time_ms[:10_001])))
    if spacing >= 28 * DAY_MS:
        return float(MONTHS_PER_YEAR)
    if calendar is Calendar.CONTINUOUS or spacing >= 7 * DAY_MS:
        return MS_PER_YEAR / spacing
    _, per_date = np.unique(time_ms // DAY_MS, return_counts=True)
    return TRADING_DAYS_PER_YEAR * float(np.median(per_date))


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
