"""A ticker's mark: the mid when both sides are quoted, else the last price."""

from __future__ import annotations

from decimal import Decimal

from edgequant.exchange.v1 import exchange_pb2
from services.portfolio.marks import MarkBook, mark_of


def test_mark_of_a_ticker() -> None:
    assert mark_of(exchange_pb2.Ticker(bid="99.5", ask="100.5", last="97")) == 100
    assert mark_of(exchange_pb2.Ticker(ask="100.5", last="97")) == 97
    assert mark_of(exchange_pb2.Ticker(bid="x", ask="1")) is None
    assert mark_of(exchange_pb2.Ticker()) is None


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
