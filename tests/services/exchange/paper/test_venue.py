"""The paper fill model against a book with sizes per level: market orders walk the levels
and may fill partially, limit orders rest and fill when trades go through them, fees,
post-only, reduce-only, funds; the same inputs give the same fills."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest

from common.errors import FailedPrecondition
from services.exchange.orders import Liquidity, OrderStatus, Side, TimeInForce
from services.exchange.paper.replay import Trade
from services.exchange.paper.venue import PaperVenue
from services.exchange.settings import PaperSettings
from services.exchange.venue import VenueReport
from tests.services.exchange.paper.paper_testing import paper_order

D = Decimal


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenue]:
    """The paper venue with its clock stopped and a small known book:
    asks 100 x 1, 101 x 2, 102 x 3; bids 99 x 1, 98 x 2."""
    settings = PaperSettings(speed=0, balances=("USDT=1000", "BTC=2"), min_notional="0")
    paper = PaperVenue(settings)
    reports: list[VenueReport] = []

    async def sink(report: VenueReport) -> None:
        reports.append(report)

    await paper.start(sink)
    paper.book.clear()
    for price, size in (("100", "1"), ("101", "2"), ("102", "3")):
        paper.book.set_level(Side.SELL, D(price), D(size))
    for price, size in (("99", "1"), ("98", "2")):
        paper.book.set_level(Side.BUY, D(price), D(size))
    paper.reports = reports  # type: ignore[attr-defined]
    yield paper
    await paper.close()


def _balance(paper: PaperVenue, asset: str) -> tuple[Decimal, Decimal]:
    balance = next(b for b in paper.account.balances(paper.resting.values()) if b.asset == asset)
    return balance.free, balance.locked


async def test_a_market_order_walks_the_levels_and_pays_the_taker_fee(venue: PaperVenue) -> None:
    report = await venue.submit(paper_order("m", Side.BUY, "2.5"))

    assert report.status is OrderStatus.FILLED
    assert [(f.price, f.quantity) for f in report.fills] == [(D(100), D(1)), (D(101), D("1.5"))]
    assert all(f.liquidity is Liquidity.TAKER for f in report.fills)
    notional = D(100) + D("151.5")
    assert sum(f.fee for f in report.fills) == notional * D("0.001")
    assert _balance(venue, "USDT")[0] == D(1000) - notional * D("1.001")
    assert _balance(venue, "BTC")[0] == D("4.5")
    # The liquidity taken is gone from the book until the venue updates the level.
    assert venue.book.best_ask() == (D(101), D("0.5"))


async def test_a_market_order_larger_than_the_book_fills_partially(venue: PaperVenue) -> None:
    report = await venue.submit(paper_order("thin", Side.BUY, "7"))  # the asks hold 6

    assert report.status is OrderStatus.EXPIRED
    assert sum(f.quantity for f in report.fills) == D(6)
    assert venue.book.best_ask() is None


async def test_a_limit_order_rests_then_fills_when_trades_go_through(venue: PaperVenue) -> None:
    report = await venue.submit(paper_order("l", Side.BUY, "1", "97"))
    assert report.status is OrderStatus.OPEN
    assert report.fills == []
    assert _balance(venue, "USDT")[1] == D(97) * D("1.001")  # locked with the larger fee

    await venue._fill_resting(Trade(0, D(97), D(5), Side.SELL))  # at the price: not through
    await venue._fill_resting(Trade(0, D("96.5"), D("0.4"), Side.SELL))
    await venue._fill_resting(Trade(0, D("96.5"), D(5), Side.SELL))

    reports: list[VenueReport] = venue.reports  # type: ignore[attr-defined]
    assert [r.status for r in reports] == [OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    assert [r.fills[0].quantity for r in reports] == [D("0.4"), D("0.6")]
    assert all(r.fills[0].price == D(97) for r in reports)  # at the limit, as maker
    assert all(r.fills[0].liquidity is Liquidity.MAKER for r in reports)
    assert "l" not in venue.resting
    assert _balance(venue, "USDT") == (D(1000) - D(97) * D("1.001"), D(0))


async def test_a_marketable_limit_order_takes_then_rests_the_remainder(venue: PaperVenue) -> None:
    report = await venue.submit(paper_order("x", Side.BUY, "2", "100"))

    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert [(f.price, f.quantity) for f in report.fills] == [(D(100), D(1))]
    assert venue.resting["x"].remaining == D(1)


async def test_post_only_is_rejected_rather_than_take(venue: PaperVenue) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        await venue.submit(paper_order("po", Side.BUY, "1", "100", post_only=True))
    assert raised.value.reason == "POST_ONLY_WOULD_TAKE"

    resting = await venue.submit(paper_order("po2", Side.BUY, "1", "99.5", post_only=True))
    assert resting.status is OrderStatus.OPEN


async def test_reduce_only_may_only_sell_what_is_held(venue: PaperVenue) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        await venue.submit(paper_order("ro", Side.SELL, "3", reduce_only=True))
    assert raised.value.reason == "REDUCE_ONLY_WOULD_INCREASE"
    with pytest.raises(FailedPrecondition):
        await venue.submit(paper_order("ro2", Side.BUY, "0.1", reduce_only=True))

    assert (await venue.submit(paper_order("ro3", Side.SELL, "1", reduce_only=True))).fills


async def test_insufficient_funds_changes_nothing(venue: PaperVenue) -> None:
    before = venue.account.balances(venue.resting.values())
    with pytest.raises(FailedPrecondition) as raised:
        await venue.submit(paper_order("poor", Side.BUY, "9", "200"))

    assert raised.value.reason == "INSUFFICIENT_FUNDS"
    assert venue.account.balances(venue.resting.values()) == before
    assert venue.book.best_ask() == (D(100), D(1))


async def test_fill_or_kill_expires_whole_when_the_book_is_too_thin(venue: PaperVenue) -> None:
    report = await venue.submit(paper_order("fok", Side.SELL, "4", time_in_force=TimeInForce.FOK))

    assert report.status is OrderStatus.EXPIRED
    assert report.fills == []


def _timeless(report: VenueReport) -> VenueReport:
    return replace(report, fills=[replace(fill, time=datetime.min) for fill in report.fills])


async def test_the_replay_is_deterministic() -> None:
    """Two venues fed the same real events and orders produce the same fills."""
    outcomes = []
    for _ in range(2):
        paper = PaperVenue(PaperSettings(speed=0, seed=7, latency_jitter_ms=0.5))
        reports: list[VenueReport] = []

        async def sink(report: VenueReport, into: list[VenueReport] = reports) -> None:
            into.append(report)

        await paper.start(sink)
        bid = paper.book.best_bid()
        assert bid is not None
        resting = await paper.submit(paper_order("r", Side.BUY, "0.5", f"{bid[0] - 5:f}"))
        taken = await paper.submit(paper_order("t", Side.BUY, "0.3"))
        await paper.advance(3000)
        # Fill times are paper time, the wall clock: equal only up to when each run started.
        outcomes.append(
            (
                _timeless(resting),
                _timeless(taken),
                [_timeless(r) for r in reports],
                paper.book.depth(5),
            )
        )
        await paper.close()

    assert outcomes[0] == outcomes[1]
    assert outcomes[0][2], "the replayed trades should have filled the resting bid"
