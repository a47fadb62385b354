"""The mark book: the latest mark per venue and symbol, and a version per venue."""

from __future__ import annotations

from decimal import Decimal

from services.portfolio.marks import MarkBook


def test_marks_are_per_venue() -> None:
    marks = MarkBook()
    marks.set("paper", "BTC/USDT", Decimal(1))
    assert marks.get("paper", "BTC/USDT") == 1
    assert marks.get("binance-live", "BTC/USDT") is None


def test_version_moves_only_when_a_mark_of_that_venue_changes() -> None:
    marks = MarkBook()
    assert marks.version("paper") == 0
    marks.set("paper", "BTC/USDT", Decimal(100))
    moved = marks.version("paper")
    assert moved > 0
    marks.set("paper", "BTC/USDT", Decimal("100.0"))  # the same price again
    assert marks.version("paper") == moved
    marks.set("binance-live", "BTC/USDT", Decimal(101))
    assert marks.version("paper") == moved
    marks.set("paper", "ETH/USDT", Decimal(5))
    assert marks.version("paper") > moved
