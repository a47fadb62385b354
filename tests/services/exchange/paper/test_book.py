"""The order book keeps each side sorted as the replay updates it: the best levels, the
depth and the levels a taker walks match a full sort of the book, on the shipped data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.exchange.orders import Side
from services.exchange.paper.book import Level, OrderBook, walk
from services.exchange.paper.replay import DepthUpdate, SnapshotLevel, events
from services.exchange.settings import PaperSettings, dataset_path

D = Decimal


def _sorted_bids(book: OrderBook) -> list[Level]:
    return sorted(book.bids.items(), reverse=True)


def _sorted_asks(book: OrderBook) -> list[Level]:
    return sorted(book.asks.items())


def _assert_sorted_views(book: OrderBook) -> None:
    bids, asks = _sorted_bids(book), _sorted_asks(book)
    assert book.best_bid() == (bids[0] if bids else None)
    assert book.best_ask() == (asks[0] if asks else None)
    assert book.depth(20) == (bids[:20], asks[:20])
    assert list(book.liquidity(Side.BUY, None)) == asks
    assert list(book.liquidity(Side.SELL, None)) == bids


def test_the_sorted_views_follow_the_recorded_snapshot_and_depth_updates() -> None:
    book = OrderBook()
    updates = 0
    for event in events(dataset_path(PaperSettings())):
        if isinstance(event, SnapshotLevel):
            book.set_level(event.side, event.price, event.size)
        elif isinstance(event, DepthUpdate):
            book.apply_update(event.levels, event.time_ms)
            updates += 1
            if updates % 250 == 0:  # a full sort per update would make this test slow
                _assert_sorted_views(book)
        if updates == 1000:
            break
    assert updates == 1000
    assert len(book.bids) > 100
    assert len(book.asks) > 100
    _assert_sorted_views(book)


def _small_book() -> OrderBook:
    book = OrderBook()
    for price, size in (("100", "1"), ("99", "2"), ("98", "3")):
        book.set_level(Side.BUY, D(price), D(size))
    for price, size in (("101", "1"), ("102", "2"), ("103", "3")):
        book.set_level(Side.SELL, D(price), D(size))
    return book


@pytest.mark.parametrize(
    ("side", "limit", "prices"),
    [
        (Side.BUY, D("102"), [D("101"), D("102")]),
        (Side.BUY, D("100.5"), []),
        (Side.SELL, D("99"), [D("100"), D("99")]),
        (Side.SELL, D("98"), [D("100"), D("99"), D("98")]),
    ],
)
def test_a_limit_taker_sees_only_the_levels_up_to_its_price(
    side: Side, limit: Decimal, prices: list[Decimal]
) -> None:
    assert [price for price, _ in _small_book().liquidity(side, limit)] == prices


def test_consumed_liquidity_shrinks_then_removes_the_level() -> None:
    book = _small_book()
    book.consume(Side.BUY, D("101"), D("0.4"))
    assert book.best_ask() == (D("101"), D("0.6"))
    book.consume(Side.BUY, D("101"), D("0.6"))
    assert book.best_ask() == (D("102"), D("2"))
    book.consume(Side.SELL, D("100"), D("5"))  # more than the level: the level goes
    assert book.best_bid() == (D("99"), D("2"))
    _assert_sorted_views(book)


def test_a_market_taker_walks_the_levels_best_first_and_stops_when_filled() -> None:
    book = _small_book()
    assert walk(book.liquidity(Side.BUY, None), D("2.5")) == [
        (D("101"), D("1")),
        (D("102"), D("1.5")),
    ]
    assert walk(book.liquidity(Side.SELL, None), D("10")) == [
        (D("100"), D("1")),
        (D("99"), D("2")),
        (D("98"), D("3")),
    ]
    book.clear()
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert walk(book.liquidity(Side.BUY, None), D("1")) == []


def test_a_newer_level_removes_the_older_one_it_crosses() -> None:
    book = _small_book()  # set at the snapshot: bids 100, 99, 98; asks 101, 102, 103
    # The venue now says someone bids 101.5: the asks at 101 (older) cannot be there.
    book.apply_update([(Side.BUY, D("101.5"), D("1"))], time_ms=10)
    assert book.best_bid() == (D("101.5"), D("1"))
    assert book.best_ask() == (D("102"), D("2"))
    # A later ask at 101.5 is newer than that bid: the bid goes, the ask stays.
    book.apply_update([(Side.SELL, D("101.5"), D("3"))], time_ms=20)
    assert book.best_bid() == (D("100"), D("1"))
    assert book.best_ask() == (D("101.5"), D("3"))
    _assert_sorted_views(book)


def test_a_trade_removes_the_levels_it_proves_gone_but_not_newer_ones() -> None:
    book = _small_book()
    book.apply_update([(Side.BUY, D("99.5"), D("1"))], time_ms=50)
    # A seller took the bids down to 98.5 at t=40: 100 and 99 (snapshot) are gone; the
    # bid at 99.5 was set after the trade (t=50) and stays; 98 was not reached.
    book.apply_trade(D("98.5"), Side.SELL, time_ms=40)
    assert set(book.bids) == {D("98"), D("99.5")}
    assert book.best_bid() == (D("99.5"), D("1"))
    # A buyer lifting at 102 at t=60: the ask at 101 is gone, the one at 102 may remain,
    # and no bid can be at or above 102.
    book.apply_trade(D("102"), Side.BUY, time_ms=60)
    assert book.best_ask() == (D("102"), D("2"))
    _assert_sorted_views(book)


def test_liquidity_a_simulated_taker_used_keeps_the_venues_time() -> None:
    book = _small_book()
    book.apply_update([(Side.SELL, D("100.5"), D("1"))], time_ms=30)
    book.consume(Side.BUY, D("100.5"), D("0.5"))
    # Still the venue's word of t=30: a trade at t=20 does not remove it.
    book.apply_trade(D("101"), Side.BUY, time_ms=20)
    assert book.best_ask() == (D("100.5"), D("0.5"))
