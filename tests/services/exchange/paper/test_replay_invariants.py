"""The paper book over the whole shipped dataset, one full lap and on past the loop's seam:
never crossed, market orders never fill better than the book, resting limits fill only at
their price and only when a trade prints through it. The events the venue applies are
read independently from the same file, so each step's event is known to the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from services.exchange.orders import Liquidity, Order, OrderStatus, Side
from services.exchange.paper.book import OrderBook
from services.exchange.paper.replay import (
    DepthUpdate,
    SnapshotLevel,
    SnapshotStart,
    Trade,
    UpdateSequence,
    events,
    mirrored,
    trade_span,
)
from services.exchange.paper.venue import PaperVenue
from services.exchange.settings import PaperSettings, dataset_path
from services.exchange.venue import VenueReport
from tests.services.exchange.paper.paper_testing import paper_order

D = Decimal
DATASET = dataset_path(PaperSettings())
# Past the seam: long enough for the price to move far from the snapshot's again.
AFTER_SEAM = 2500


def _market_events() -> list[DepthUpdate | Trade]:
    return [e for e in events(DATASET) if isinstance(e, DepthUpdate | Trade)]


def _snapshot_top() -> tuple[Decimal, Decimal]:
    bids = [e.price for e in events(DATASET) if isinstance(e, SnapshotLevel) and e.side is Side.BUY]
    asks = [
        e.price for e in events(DATASET) if isinstance(e, SnapshotLevel) and e.side is Side.SELL
    ]
    return max(bids), min(asks)


def _lap_then_past_the_seam() -> Iterator[tuple[int, DepthUpdate | Trade]]:
    """(step, the event the venue applies at that step): a lap, then AFTER_SEAM more of
    the second lap, which plays the capture mirrored (replay.mirrored)."""
    lap = _market_events()
    pivot = sum(trade_span(DATASET), D(0))
    for step in range(len(lap) + AFTER_SEAM):
        event = lap[step % len(lap)]
        yield step, event if step < len(lap) else mirrored(event, pivot)  # type: ignore[misc]


@dataclass
class Recorded:
    reports: list[VenueReport] = field(default_factory=list)


@pytest.fixture
async def paper() -> AsyncIterator[tuple[PaperVenue, Recorded]]:
    """The venue on the shipped dataset, clock stopped, rich enough for every order."""
    venue = PaperVenue(PaperSettings(speed=0, balances=("USDT=1000000000", "BTC=100000")))
    recorded = Recorded()

    async def sink(report: VenueReport) -> None:
        recorded.reports.append(report)

    await venue.start(sink)
    yield venue, recorded
    await venue.close()


def _top(book: OrderBook) -> tuple[Decimal, Decimal]:
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None
    assert ask is not None
    return bid[0], ask[0]


async def test_the_book_is_never_crossed_over_a_lap_and_across_the_seam(
    paper: tuple[PaperVenue, Recorded],
) -> None:
    venue, _ = paper
    lap = len(_market_events())
    snapshot_top = _snapshot_top()
    assert _top(venue.book) == snapshot_top
    lows: list[Decimal] = []
    for step, event in _lap_then_past_the_seam():
        await venue.advance(1)
        bid, ask = _top(venue.book)
        assert bid < ask, f"crossed after event {step} ({event}): bid {bid} ask {ask}"
        if isinstance(event, Trade):
            lows.append(event.price)
        if step == lap - 1:
            # The seam: the next lap starts from the snapshot, mirrored (the second lap runs
            # from the capture's last price back to its first), nothing of this lap's book kept.
            pivot = sum(trade_span(DATASET), D(0))
            assert _top(venue.book) == (pivot - snapshot_top[1], pivot - snapshot_top[0])
            assert venue.book.bids.keys() == {
                pivot - e.price
                for e in events(DATASET)
                if isinstance(e, SnapshotLevel) and e.side is Side.SELL
            }
    # The capture's price leaves the snapshot's top by far (the old stale bid was 61820.99).
    assert min(lows) < D("61700")


async def test_the_replay_reports_no_break_in_the_update_sequence() -> None:
    sequence: UpdateSequence | None = None
    applied = 0
    for event in events(DATASET):
        if isinstance(event, SnapshotStart):
            sequence = UpdateSequence(event.last_update_id)
        elif isinstance(event, DepthUpdate):
            assert sequence is not None
            apply, problem = sequence.accept(event)
            assert problem is None
            applied += apply
    assert applied > 3000


def test_a_bid_the_snapshot_holds_is_gone_once_an_update_removes_it() -> None:
    """The update that straddles the snapshot (received before it) removes 61820.99."""
    book = OrderBook()
    stale = D("61820.99")
    for event in events(DATASET):
        if isinstance(event, SnapshotLevel):
            book.set_level(event.side, event.price, event.size)
        elif isinstance(event, DepthUpdate):
            assert stale in book.bids
            book.apply_update(event.levels, event.time_ms)
            assert stale not in book.bids
            return


class ReferenceBook:
    """The venue's book as Binance documents it, built by the test: the snapshot, then
    the depth updates after its id, the first one spanning it, with no gap."""

    def __init__(self, pivot: Decimal | None = None) -> None:
        """`pivot`: the mirrored lap's snapshot."""
        self.book = OrderBook()
        self.snapshot_id = 0
        self.last_id: int | None = None
        for event in events(DATASET):
            if isinstance(event, SnapshotStart):
                self.snapshot_id = event.last_update_id
            elif isinstance(event, SnapshotLevel):
                level = event if pivot is None else mirrored(event, pivot)
                assert isinstance(level, SnapshotLevel)
                self.book.set_level(level.side, level.price, level.size)

    def apply(self, event: DepthUpdate | Trade) -> None:
        if not isinstance(event, DepthUpdate) or event.final_id <= self.snapshot_id:
            return
        if self.last_id is None:
            assert event.first_id <= self.snapshot_id + 1 <= event.final_id
        else:
            assert event.first_id == self.last_id + 1
        self.last_id = event.final_id
        for side, price, size in event.levels:
            self.book.set_level(side, price, size)


async def test_market_orders_never_fill_better_than_the_book(
    paper: tuple[PaperVenue, Recorded],
) -> None:
    venue, _ = paper
    lap = len(_market_events())
    reference = ReferenceBook()
    size = D("2")  # walks several levels near the top
    orders = 0
    for step, event in _lap_then_past_the_seam():
        await venue.advance(1)
        if step == lap:
            # The seam: both start over from the (mirrored) snapshot.
            reference = ReferenceBook(sum(trade_span(DATASET), D(0)))
        reference.apply(event)
        if step % 97:
            continue
        market_bid, market_ask = _top(reference.book)
        for side in (Side.BUY, Side.SELL):
            levels = dict(venue.book.asks if side is Side.BUY else venue.book.bids)
            bid, ask = _top(venue.book)
            report = await venue.submit(paper_order(f"m{step}{side.value}", side, size))
            orders += 1
            assert report.fills
            for fill in report.fills:
                assert fill.liquidity is Liquidity.TAKER
                # Every fill is at a level that was in the book, for no more than it held,
                # and never better than the market's own book at that moment.
                assert fill.quantity <= levels[fill.price]
                if side is Side.BUY:
                    assert fill.price >= ask
                    assert fill.price >= market_ask
                else:
                    assert fill.price <= bid
                    assert fill.price <= market_bid
    assert orders > 250


async def test_resting_limits_fill_at_their_price_only_when_a_trade_goes_through(
    paper: tuple[PaperVenue, Recorded],
) -> None:
    venue, recorded = paper
    placed: dict[str, Order] = {}
    maker_fills = 0
    for step, event in _lap_then_past_the_seam():
        if step % 53 == 0:
            bid, ask = _top(venue.book)
            # At the touch and a few dollars away, both sides; they rest (none crosses).
            for side, price in (
                (Side.BUY, bid),
                (Side.BUY, bid - 3),
                (Side.SELL, ask),
                (Side.SELL, ask + 3),
            ):
                order = paper_order(f"l{step}{side.value}{price}", side, D("0.05"), price)
                report = await venue.submit(order)
                assert report.status is OrderStatus.OPEN
                placed[order.order_id] = order
        recorded.reports.clear()
        await venue.advance(1)
        if not recorded.reports:
            continue
        assert isinstance(event, Trade), f"a depth update filled resting orders at step {step}"
        filled = D(0)
        for report in recorded.reports:
            order = placed[report.order_id]
            (fill,) = report.fills
            assert order.price is not None
            assert fill.liquidity is Liquidity.MAKER
            assert fill.price == order.price
            if order.side is Side.BUY:
                assert event.price < order.price
            else:
                assert event.price > order.price
            filled += fill.quantity
            maker_fills += 1
        assert filled <= event.size
    assert maker_fills > 100
    # Some orders were never traded through: a limit is not filled by merely existing.
    assert venue.resting
