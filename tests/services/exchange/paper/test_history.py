"""The paper candle history: minute bars of the replayed trades aggregate exactly into
every timeframe; the newest bars are kept, up to a capacity."""

from __future__ import annotations

from decimal import Decimal

from services.exchange.markets import Candle
from services.exchange.paper.history import MinuteBars

D = Decimal
MINUTE = 60_000
T0 = 1_796_000_400_000  # a whole hour


def _bars() -> MinuteBars:
    bars = MinuteBars()
    for minute, price, size in (
        (0, "100.5", "0.1"),
        (0, "101", "0.2"),
        (1, "99.25", "1"),
        (4, "102", "0.00000001"),
        (5, "103", "2"),
        (7, "98", "3"),
    ):
        bars.add(T0 + minute * MINUTE + 500, D(price), D(size))
    return bars


def test_minute_bars_aggregate_into_wider_candles() -> None:
    assert _bars().candles(5 * MINUTE, None, 10) == [
        Candle(T0, D("100.5"), D("102"), D("99.25"), D("102"), D("1.30000001")),
        Candle(T0 + 5 * MINUTE, D("103"), D("103"), D("98"), D("98"), D("5")),
    ]


def test_since_takes_the_first_candles_from_it_and_none_the_latest() -> None:
    bars = _bars()
    assert [c.open_time_ms for c in bars.candles(MINUTE, T0 + MINUTE, 2)] == [
        T0 + MINUTE,
        T0 + 4 * MINUTE,
    ]
    assert [c.open_time_ms for c in bars.candles(MINUTE, None, 2)] == [
        T0 + 5 * MINUTE,
        T0 + 7 * MINUTE,
    ]
    assert MinuteBars().candles(MINUTE, None, 5) == []


def test_only_the_newest_minutes_are_kept() -> None:
    bars = MinuteBars(capacity=8)
    for minute in range(20):
        bars.add(T0 + minute * MINUTE, D(minute + 1), D(1))
    kept = bars.candles(MINUTE, 0, 100)
    assert 8 <= len(kept) <= 9
    assert kept[-1].close == D(20)
