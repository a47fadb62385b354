"""A ticker's mark: the mid when both sides are quoted, else the last price."""

from __future__ import annotations

from edgequant.exchange.v1 import exchange_pb2
from services.portfolio.ticker_feed import mark_of


def test_mark_of_a_ticker() -> None:
    assert mark_of(exchange_pb2.Ticker(bid="99.5", ask="100.5", last="97")) == 100
    assert mark_of(exchange_pb2.Ticker(ask="100.5", last="97")) == 97
    assert mark_of(exchange_pb2.Ticker(bid="x", ask="1")) is None
    assert mark_of(exchange_pb2.Ticker()) is None
