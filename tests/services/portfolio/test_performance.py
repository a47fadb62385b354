"""Performance edge cases; the full figures are checked over gRPC in test_servicer.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.portfolio.accounts import EquityPoint
from services.portfolio.performance import max_drawdown, performance

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _series(*equities: int) -> list[EquityPoint]:
    return [
        EquityPoint(T0 + timedelta(days=day), Decimal(value), Decimal(0))
        for day, value in enumerate(equities)
    ]


def test_unrecovered_drawdown_lasts_to_the_last_point() -> None:
    drawdown = max_drawdown(_series(100, 120, 90, 110, 60, 80))
    assert drawdown.depth == 0.5  # 120 -> 60
    assert drawdown.duration == timedelta(days=4)  # from the peak on day 1 to day 5


def test_a_deeper_later_drawdown_wins() -> None:
    drawdown = max_drawdown(_series(100, 90, 100, 200, 150, 210))
    assert drawdown.depth == 0.25  # 200 -> 150, deeper than 100 -> 90
    assert drawdown.duration == timedelta(days=2)  # day 3 to day 5


def test_undefined_ratios_are_zero() -> None:
    figures = performance(_series(100), [Decimal(5), Decimal(7)])
    assert (figures.sharpe_ratio, figures.sortino_ratio, figures.max_drawdown) == (0, 0, 0)
    assert figures.win_rate == 1.0
    assert figures.profit_factor == 0.0  # no losing trade: undefined, as in Freqtrade
    empty = performance([], [])
    assert (empty.total_return, empty.closed_trades, empty.start_time) == (0, 0, None)


def test_rising_equity_has_no_sortino_downside() -> None:
    figures = performance(_series(100, 101, 103, 106), [])
    assert figures.total_return == 0.06
    assert figures.sharpe_ratio > 0
    assert figures.sortino_ratio == 0.0  # no negative day
