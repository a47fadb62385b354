"""Downsampling the equity series: the last snapshot of each interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.portfolio.accounts import EquityPoint
from services.portfolio.equity import downsample

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _point(minutes: int, equity: int) -> EquityPoint:
    return EquityPoint(T0 + timedelta(minutes=minutes), Decimal(equity), Decimal(0))


def test_last_point_of_each_interval() -> None:
    points = [_point(m, 100 + m) for m in (0, 10, 59, 60, 61, 185)]
    hourly = downsample(points, timedelta(hours=1))
    assert [(p.time - T0, p.equity) for p in hourly] == [
        (timedelta(minutes=59), Decimal(159)),
        (timedelta(minutes=61), Decimal(161)),
        (timedelta(minutes=185), Decimal(285)),
    ]


def test_no_interval_keeps_every_point() -> None:
    points = [_point(m, m) for m in range(5)]
    assert downsample(points, timedelta(0)) == points
