"""`paper-live`: real ccxt against a fake Binance on 127.0.0.1 (recorded bodies). The
market, the book and the trades come from the venue; orders never reach it: the paper
engine fills them against its book (walking the levels), resting limits fill when the
venue's trades go through them; offline, the venue says so and the replay stays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from common.errors import Unavailable
from common.testing import free_port, isolated_config
from edgequant.exchange.v1 import exchange_pb2
from services.exchange.orders import Liquidity, OrderStatus, Side
from services.exchange.paper.live import UNAVAILABLE_REASON, PaperLiveVenue
from services.exchange.settings import PaperSettings
from services.exchange.venue import VenueReport
from tests.services.exchange.exchange_testing import error_info, running_exchange
from tests.services.exchange.paper.live_testing import MovingBinance, serving_moving_binance
from tests.services.exchange.paper.paper_testing import paper_order

D = Decimal
SYMBOL = "BTC/USDT"


async def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


def _settings(url: str) -> PaperSettings:
    return PaperSettings(
        source="binance",
        live_api_url=url,
        live_poll_seconds=0.05,
        live_timeout_ms=2000,
        balances=("USDT=10000", "BTC=1"),
    )


@pytest.fixture
async def live() -> AsyncIterator[tuple[PaperLiveVenue, MovingBinance, list[VenueReport]]]:
    async with serving_moving_binance() as fake:
        venue = PaperLiveVenue(_settings(fake.url))
        reports: list[VenueReport] = []

        async def sink(report: VenueReport) -> None:
            reports.append(report)

        await venue.start(sink)
        await _eventually(lambda: venue.info.available)
        yield venue, fake, reports
        await venue.close()


async def test_market_data_comes_from_the_venue(
    live: tuple[PaperLiveVenue, MovingBinance, list[VenueReport]],
) -> None:
    venue, fake, _ = live
    (market,) = await venue.markets()
    # Binance's BTCUSDT filters (exchangeInfo), the paper fees.
    assert (market.symbol, market.price_increment, market.quantity_increment) == (
        SYMBOL,
        D("0.01"),
        D("0.00001"),
    )
    assert market.min_notional == D(5)
    assert market.taker_fee == D("0.001")
    ticker = await venue.ticker(SYMBOL)
    # The book is the venue's depth; last is its last trade; 24h figures its ticker's.
    assert (ticker.bid, ticker.ask) == (D("42574.30"), D("42574.31"))
    assert ticker.last == D("73238.7")
    assert ticker.high is not None
    book = await venue.order_book(SYMBOL, 5)
    assert book.asks == [(D("42574.31"), D("0.0087")), (D("42574.80"), D("0.00893"))]
    assert fake.calls["GET /api/v3/aggTrades"] >= 1
    assert not fake.orders  # nothing is ever sent to the venue


async def test_orders_are_matched_locally_against_the_venue_book(
    live: tuple[PaperLiveVenue, MovingBinance, list[VenueReport]],
) -> None:
    venue, fake, reports = live
    # A market buy walks the two ask levels; the rest of the order expires (IOC).
    report = await venue.submit(paper_order("m1", Side.BUY, "0.02", venue="paper-live"))
    assert [(f.price, f.quantity, f.liquidity) for f in report.fills] == [
        (D("42574.31"), D("0.0087"), Liquidity.TAKER),
        (D("42574.80"), D("0.00893"), Liquidity.TAKER),
    ]
    assert report.status is OrderStatus.EXPIRED
    assert not fake.orders

    # A resting buy below the market fills, as maker, when a venue trade goes through it,
    # up to that trade's size.
    rest = await venue.submit(paper_order("r1", Side.BUY, "0.005", "42500", venue="paper-live"))
    assert rest.status is OrderStatus.OPEN
    fake.print_trade("42499.99", "0.002", buyer_is_maker=True)
    await _eventually(lambda: bool(reports))
    (fill_report,) = reports
    assert fill_report.status is OrderStatus.PARTIALLY_FILLED
    (fill,) = fill_report.fills
    assert (fill.price, fill.quantity, fill.liquidity) == (D("42500"), D("0.002"), Liquidity.MAKER)
    assert fill.fee == D("42500") * D("0.002") * D("0.001")
    balances = {b.asset: b for b in await venue.balances()}
    assert balances["BTC"].total == D(1) + D("0.0087") + D("0.00893") + D("0.002")
    # The rest of the resting buy holds its quote back.
    assert balances["USDT"].locked == D("0.003") * D("42500") * D("1.001")


async def test_an_unreachable_source_is_unavailable_with_its_reason() -> None:
    # Nothing listens on this port: ccxt's requests are refused.
    venue = PaperLiveVenue(_settings(f"http://127.0.0.1:{free_port()}"))

    async def sink(report: VenueReport) -> None:
        pass

    await venue.start(sink)
    try:
        await _eventually(lambda: "binance" in venue.problem and "yet" not in venue.problem)
        assert not venue.info.available
        with pytest.raises(Unavailable) as raised:
            await venue.ticker(SYMBOL)
        assert raised.value.reason == UNAVAILABLE_REASON
        with pytest.raises(Unavailable):
            await venue.submit(paper_order("x", Side.BUY, "0.01", venue="paper-live"))
    finally:
        await venue.close()


async def test_offline_the_exchange_keeps_the_replay_and_says_why_paper_live_is_not(
    tmp_path: Path,
) -> None:
    environment = isolated_config(
        tmp_path,
        EXCHANGE__PAPER__SOURCE="binance",
        EXCHANGE__PAPER__LIVE_API_URL=f"http://127.0.0.1:{free_port()}",
        EXCHANGE__PAPER__LIVE_POLL_SECONDS="0.05",
        EXCHANGE__PAPER__SPEED="0",
    )
    from common.config import load_config  # noqa: PLC0415

    async with running_exchange(load_config(environment)) as exchange:
        await _eventually(
            lambda: "yet" not in getattr(exchange.servicer.venues.get("paper-live"), "problem", "")
        )
        venues = (await exchange.stub.ListVenues(exchange_pb2.ListVenuesRequest())).venues
        assert [(v.name, v.available, v.exchange_id) for v in venues] == [
            ("paper", True, ""),
            ("paper-live", False, "binance"),
        ]
        # Its own account, from the same configured balances.
        assert venues[1].starting_balances == venues[0].starting_balances
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await exchange.stub.GetTicker(
                exchange_pb2.GetTickerRequest(venue="paper-live", symbol=SYMBOL)
            )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(raised.value).reason == UNAVAILABLE_REASON
        assert "binance" in (raised.value.details() or "")
        replayed = await exchange.stub.GetTicker(
            exchange_pb2.GetTickerRequest(venue="paper", symbol=SYMBOL)
        )
        assert replayed.ticker.bid
