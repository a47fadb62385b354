"""Performance figures from the equity snapshots and the closed round trips.

Ratios are analytics (floats); the conventions are Freqtrade's where it has one:
- Sharpe and Sortino are annualized from daily returns (the last snapshot of each UTC
  day), over 365 days (crypto trades every day), with a risk-free rate of 0. Sortino's
  downside deviation is the root mean square of the negative returns over all days.
- Max drawdown is the largest fall from a running peak, as a fraction of that peak;
  its duration runs from that peak until equity is back at it (or to the last
  snapshot, if it never is).
- Win rate and profit factor count round trips (flat to flat, or to a flip).
- A ratio that is undefined (no trades, no losses, fewer than two days) is 0.
- Returns and drawdown are net of flows: each point's equity less the transfers
  (deposits minus withdrawals) booked since the first point, so a deposit is not a
  gain and a withdrawal not a loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from services.portfolio.accounts import EquityPoint
from services.portfolio.equity import downsample

DAYS_PER_YEAR = 365


@dataclass(frozen=True, slots=True)
class Performance:
    total_return: float = 0.0
    max_drawdown: float = 0.0
    max_drawdown_duration: timedelta = timedelta(0)
    sharpe_ratio: float = 0.0
    sortino_ratio: float = 0.0
    win_rate: float = 0.0
    profit_factor: float = 0.0
    closed_trades: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Drawdown:
    depth: float
    duration: timedelta


def max_drawdown(points: Sequence[EquityPoint]) -> Drawdown:
    deepest = Drawdown(0.0, timedelta(0))
    peak, peak_time = Decimal(0), None
    deepest_peak: tuple[Decimal, datetime] | None = None
    for point in points:
        if peak_time is None or point.equity >= peak:
            peak, peak_time = point.equity, point.time
            continue
        depth = float((peak - point.equity) / peak) if peak > 0 else 0.0
        if depth > deepest.depth:
            deepest = Drawdown(depth, timedelta(0))
            deepest_peak = (peak, peak_time)
    if deepest_peak is None:
        return deepest
    top, since = deepest_peak
    recovered = next((p.time for p in points if p.time > since and p.equity >= top), None)
    return Drawdown(deepest.depth, (recovered or points[-1].time) - since)


def net_of_flows(points: Sequence[EquityPoint]) -> list[EquityPoint]:
    """The points with the transfers booked since the first one taken out of equity."""
    if not points:
        return []
    base = points[0].net_transfers
    return [replace(p, equity=p.equity - (p.net_transfers - base)) for p in points]


def daily_returns(points: Sequence[EquityPoint]) -> list[float]:
    closes = [float(point.equity) for point in downsample(points, timedelta(days=1))]
    return [after / before - 1 for before, after in pairwise(closes) if before > 0]


def sharpe_ratio(returns: Sequence[float]) -> float:
    if len(returns) < 2:
        return 0.0
    # Here, not at the top: statistics (and fractions) is ~0.1 MiB an idle portfolio
    # does not need; the figures are computed on request.
    import statistics  # noqa: PLC0415

    deviation = statistics.stdev(returns)
    return statistics.fmean(returns) / deviation * math.sqrt(DAYS_PER_YEAR) if deviation else 0.0


def sortino_ratio(returns: Sequence[float]) -> float:
    if len(returns) < 2:
        return 0.0
    import statistics  # noqa: PLC0415 - as in sharpe_ratio

    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    return statistics.fmean(returns) / downside * math.sqrt(DAYS_PER_YEAR) if downside else 0.0


def performance(points: Sequence[EquityPoint], round_trips: Sequence[Decimal]) -> Performance:
    """Figures over `points` (oldest first) and the PnL of the round trips closed then."""
    wins = [pnl for pnl in round_trips if pnl > 0]
    losses = [pnl for pnl in round_trips if pnl < 0]
    gross_loss = -sum(losses, Decimal(0))
    trades = Performance(
        win_rate=len(wins) / len(round_trips) if round_trips else 0.0,
        profit_factor=float(sum(wins, Decimal(0)) / gross_loss) if gross_loss else 0.0,
        closed_trades=len(round_trips),
    )
    if not points:
        return trades
    points = net_of_flows(points)
    first, last = points[0].equity, points[-1].equity
    drawdown = max_drawdown(points)
    returns = daily_returns(points)
    return Performance(
        total_return=float(last / first - 1) if first > 0 else 0.0,
        max_drawdown=drawdown.depth,
        max_drawdown_duration=drawdown.duration,
        sharpe_ratio=sharpe_ratio(returns),
        sortino_ratio=sortino_ratio(returns),
        win_rate=trades.win_rate,
        profit_factor=trades.profit_factor,
        closed_trades=trades.closed_trades,
        start_time=points[0].time,
        end_time=points[-1].time,
    )
