"""Paper time is the wall clock: the replay is shifted onto it (and paced by `speed`), so
fills, tickers and candles carry today's times like the orders do, also across the seam
where the replay starts over."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from services.exchange.orders import OrderStatus, Side
from services.exchange.paper.venue import PaperVenue
from services.exchange.settings import PaperSettings, dataset_path
from services.exchange.venue import VenueReport
from tests.services.exchange.exchange_testing import LIMIT, StartExchange, order
from tests.services.exchange.paper.paper_testing import paper_order

D = Decimal
SYMBOL = "BTC/USDT"


@pytest.fixture
def short_dataset(tmp_path: Path) -> Path:
    """The head of the shipped capture (its snapshot and its first 1,500 market events,
    about 40 seconds), so a test sees the replay loop several times quickly."""
    path = tmp_path / "head.txt.gz"
    market_events = 0
    with (
        gzip.open(dataset_path(PaperSettings()), "rt") as source,
        gzip.open(path, "wt") as target,
    ):
        for line in source:
            market_events += line[0] in "DT"
            if market_events > 1500:
                break
            target.write(line)
    return path


@asynccontextmanager
async def _started(
    settings: PaperSettings,
) -> AsyncIterator[tuple[PaperVenue, asyncio.Queue[VenueReport]]]:
    venue = PaperVenue(settings)
    reports: asyncio.Queue[VenueReport] = asyncio.Queue()
    await venue.start(reports.put)
    try:
        yield venue, reports
    finally:
        await venue.close()


async def test_fills_and_tickers_carry_wall_clock_times_while_the_clock_runs() -> None:
    before = datetime.now(UTC)
    async with _started(PaperSettings(speed=1, balances=("USDT=100000",))) as (venue, reports):
        first_ticker = await venue.ticker(SYMBOL)
        bid = venue.book.best_bid()
        assert bid is not None
        # At the touch: the capture's first sell trades go through it within its first second.
        resting = paper_order("resting", Side.BUY, "0.01", bid[0])
        assert (await venue.submit(resting)).status is OrderStatus.OPEN
        market = paper_order("market", Side.BUY, "0.01")
        taker = await venue.submit(market)
        maker = await asyncio.wait_for(reports.get(), timeout=60)
        last_ticker = await venue.ticker(SYMBOL)
        book = await venue.order_book(SYMBOL, 5)
        after = datetime.now(UTC)

    assert before <= first_ticker.time <= after
    (taker_fill,) = taker.fills
    assert market.create_time <= taker_fill.time <= after
    assert maker.order_id == "resting"
    assert resting.create_time <= maker.fills[0].time <= after
    assert maker.fills[0].time <= last_ticker.time <= after
    assert last_ticker.time <= book.time <= after


async def test_the_loop_runs_at_speed_and_keeps_wall_clock_times_across_the_seam(
    short_dataset: Path,
) -> None:
    settings = PaperSettings(speed=40, dataset=short_dataset)
    before = datetime.now(UTC)
    times: list[datetime] = []
    seen = 0
    async with _started(settings) as (venue, _):
        async with asyncio.timeout(60):
            while venue.laps < 3:
                ticker = await venue.ticker(SYMBOL)
                assert ticker.bid is not None
                assert ticker.ask is not None
                assert ticker.bid < ticker.ask
                times.append(ticker.time)
                seen = await venue.tickers_changed.wait(seen)
        after = datetime.now(UTC)
    assert times == sorted(times)
    assert before <= times[0]
    assert times[-1] <= after


async def test_a_stepped_replay_keeps_its_times_on_the_wall_clock_through_laps() -> None:
    """With the clock stopped (tests step it) paper time runs with the replay: a full lap
    later it is about six minutes on, never back at the lap's start nor in 2024."""
    before = datetime.now(UTC)
    # Without the bundled past: the candles are the replay's own.
    async with _started(PaperSettings(speed=0, history=Path(""))) as (venue, _):
        start = (await venue.ticker(SYMBOL)).time
        while venue.laps < 1:
            await venue.advance(500)
        seam = (await venue.ticker(SYMBOL)).time
        await venue.advance(500)
        later = (await venue.ticker(SYMBOL)).time
        candles = await venue.candles(SYMBOL, "1m", None, 10)

    assert before <= start
    # One lap of the capture is 5 min 45 s of replay.
    assert (seam - start).total_seconds() >= 345
    assert later > seam
    assert candles
    assert all(before.timestamp() * 1000 - 60_000 < c.open_time_ms for c in candles)
    assert candles[-1].open_time_ms <= later.timestamp() * 1000


async def test_executions_carry_the_same_clock_as_their_orders(
    start_exchange: StartExchange,
) -> None:
    """Through the service: a market order's fill and a resting order's later maker fill
    are stamped on the orders' clock (before: the capture's 2024 times)."""
    before = datetime.now(UTC)
    async with start_exchange(EXCHANGE__PAPER__SPEED="1") as exchange:
        bid = exchange.paper.book.best_bid()
        assert bid is not None
        # At the touch: the capture's first sell trades go through it within its first second.
        resting = await exchange.stub.SubmitOrder(
            order(client_order_id="rest", type=LIMIT, price=f"{bid[0]:f}")
        )
        taken = await exchange.stub.SubmitOrder(order(client_order_id="take"))
        stream = exchange.stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest())
        executions: dict[str, common_pb2.Execution] = {}
        async with asyncio.timeout(60):
            while len(executions) < 2:
                message = await stream.read()
                assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
                executions[message.execution.client_order_id] = message.execution
        stream.cancel()
        ticker = await exchange.stub.GetTicker(
            exchange_pb2.GetTickerRequest(venue="paper", symbol=SYMBOL)
        )
        after = datetime.now(UTC)

    for placed in (resting.order, taken.order):
        created = placed.create_time.ToDatetime(UTC)
        filled = executions[placed.client_order_id].time.ToDatetime(UTC)
        assert before <= created <= filled <= after
    assert executions["rest"].liquidity == common_pb2.LIQUIDITY_MAKER
    assert before <= ticker.ticker.time.ToDatetime(UTC) <= after
