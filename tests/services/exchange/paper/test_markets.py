"""The default paper markets (configs/default.toml): each serves 31 days of real 1-minute
history ending at the wall clock, running into its replay without a gap or a jump; each
replay's laps join without a jump; the markets without depth get the documented book,
which market orders walk; one account settles fills on every market."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from itertools import pairwise

import pytest

from common import timeframes
from common.config import load_config
from services.exchange.orders import OrderStatus, Side
from services.exchange.paper.venue import PaperVenue
from services.exchange.settings import PaperSettings, load_settings
from services.exchange.venue import VenueReport
from tests.services.exchange.paper.paper_testing import paper_order

D = Decimal
MINUTE = 60_000
DAY = 24 * 60 * MINUTE
SYMBOLS = ("BTC/USDT", "ETH/USDT", "ADA/USDT")


def _default_settings() -> PaperSettings:
    return replace(load_settings(load_config({}).exchange).paper, speed=0)


@pytest.fixture
async def venue() -> AsyncIterator[PaperVenue]:
    paper = PaperVenue(_default_settings())

    async def sink(report: VenueReport) -> None:
        pass

    await paper.start(sink)
    yield paper
    await paper.close()


@pytest.mark.parametrize("symbol", SYMBOLS)
async def test_thirty_days_of_minutes_end_at_the_wall_clock_and_run_into_the_replay(
    venue: PaperVenue, symbol: str
) -> None:
    started = venue.clock_ms()
    market = venue.paper_markets[symbol]
    past = await venue.candles(symbol, "1m", started - 40 * DAY, 100_000)
    assert len(past) == 31 * 24 * 60
    opens = [c.open_time_ms for c in past]
    # No minute missing, none twice; the last is the minute before the start's.
    assert all(b - a == MINUTE for a, b in pairwise(opens))
    assert opens[-1] == started - started % MINUTE - MINUTE
    assert opens[0] <= started - 30 * DAY
    assert all(0 < c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in past)

    # The replay's first trade opens the next minute at the history's last close.
    while market.last_trade is None:
        await venue.advance(1, symbol)
    assert market.last_trade.price == past[-1].close
    (now,) = await venue.candles(symbol, "1m", opens[-1] + MINUTE, 1)
    assert now.open == past[-1].close
    assert now.open_time_ms == opens[-1] + MINUTE


async def test_coarser_timeframes_aggregate_the_minutes(venue: PaperVenue) -> None:
    start = venue.clock_ms() - 30 * DAY
    minutes = await venue.candles("ETH/USDT", "1m", start, 100_000)
    for timeframe in ("1h", "4h", "1d", "1w"):
        width = timeframes.milliseconds(timeframe)
        candles = await venue.candles("ETH/USDT", timeframe, start, 10_000)
        assert len(candles) >= 30 * DAY // width
        probe = candles[1]  # a whole one
        inside = [
            m for m in minutes if probe.open_time_ms <= m.open_time_ms < probe.open_time_ms + width
        ]
        assert probe.open == inside[0].open
        assert probe.close == inside[-1].close
        assert probe.high == max(m.high for m in inside)
        assert probe.low == min(m.low for m in inside)
        assert probe.volume == sum((m.volume for m in inside), D(0))


@pytest.mark.parametrize("symbol", SYMBOLS)
async def test_the_loop_seam_has_no_jump(venue: PaperVenue, symbol: str) -> None:
    """The second lap plays the data mirrored: it starts at the price the first ended at."""
    market = venue.paper_markets[symbol]
    while market.lap == 0:
        await venue.advance(1, symbol)
        last = market.last_trade
    while market.last_trade is last:
        await venue.advance(1, symbol)
    assert last is not None
    assert market.last_trade is not None
    assert market.last_trade.price == last.price
    # And the mirrored lap ends where the first began: the third starts as the first.
    bid, ask = market.book.best_bid(), market.book.best_ask()
    assert bid is not None
    assert ask is not None
    assert bid[0] < ask[0]


async def test_a_market_order_walks_the_modelled_book(venue: PaperVenue) -> None:
    eth = venue.paper_markets["ETH/USDT"]
    while eth.last_trade is None:
        await venue.advance(1, "ETH/USDT")
    ask = eth.book.best_ask()
    bid = eth.book.best_bid()
    assert ask is not None
    assert bid is not None
    tick = D("0.01")
    # The documented model: 1 tick wide, levels 1 tick apart, 5 ETH each, 20 a side.
    assert ask[0] - bid[0] == tick
    assert len(eth.book.asks) == len(eth.book.bids) == 20
    report = await venue.submit(paper_order("walk", Side.BUY, "12", symbol="ETH/USDT"))
    assert report.status is OrderStatus.FILLED
    assert [(f.price - ask[0], f.quantity) for f in report.fills] == [
        (0, D(5)),
        (tick, D(5)),
        (2 * tick, D(2)),
    ]
    # What it took stays taken until the next trade rebuilds the book.
    after = eth.book.best_ask()
    assert after is not None
    assert after == (ask[0] + 2 * tick, D(3))


async def test_one_account_settles_fills_on_every_market(venue: PaperVenue) -> None:
    before = {b.asset: b.total for b in await venue.balances()}
    spent = D(0)
    for symbol, quantity in (("ETH/USDT", "1.5"), ("ADA/USDT", "1000")):
        market = venue.paper_markets[symbol]
        while market.last_trade is None:
            await venue.advance(1, symbol)
        report = await venue.submit(paper_order(f"buy-{symbol}", Side.BUY, quantity, symbol=symbol))
        assert report.status is OrderStatus.FILLED
        spent += sum((f.price * f.quantity + f.fee for f in report.fills), D(0))
    after = {b.asset: b.total for b in await venue.balances()}
    assert after["ETH"] == D("1.5")
    assert after["ADA"] == D(1000)
    assert after["BTC"] == before["BTC"]
    assert after["USDT"] == before["USDT"] - spent
