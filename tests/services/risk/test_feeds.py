"""The feeds: order updates keep the open orders, position updates the cash and the
losing streak; a feed that loses its peer leaves the book stale until it re-reads
the snapshot. Real gRPC to scripted peers on free ports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read better short
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_status import rpc_status

from common.database import create_engine, session_factory
from common.errors import EdgeQuantError, Unavailable, to_status
from common.interceptors import STOPPING
from common.testing import serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.risk.engine import RiskEngine
from services.risk.events import RiskEventType, risk_events
from services.risk.feeds import AccountFeeds, Feeds, mark_price
from services.risk.limits import Limits
from services.risk.risk_book import OrderSide
from services.risk.settings import FeedSettings
from services.risk.storage.repository import RiskRepository
from services.risk.trading_state import initial_state

BTC = "BTC/USDT"
END = object()  # ends a scripted stream, as a peer restarting would


class Portfolio(portfolio_pb2_grpc.PortfolioServiceServicer):
    def __init__(self) -> None:
        self.updates: asyncio.Queue[Any] = asyncio.Queue()

    async def GetPortfolio(self, request: Any, context: Any) -> Any:
        return portfolio_pb2.GetPortfolioResponse(portfolio=portfolio_pb2.Portfolio(cash="1000"))

    async def ListPositions(self, request: Any, context: Any) -> Any:
        return portfolio_pb2.ListPositionsResponse()

    async def GetEquityHistory(self, request: Any, context: Any) -> Any:
        return portfolio_pb2.GetEquityHistoryResponse()

    async def StreamPositions(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await context.send_initial_metadata(())  # subscribed, as the real portfolio says
        while (item := await self.updates.get()) is not END:
            yield portfolio_pb2.StreamPositionsResponse(position=item)


class Exchange(exchange_pb2_grpc.ExchangeServiceServicer):
    def __init__(self) -> None:
        self.orders: list[common_pb2.Order] = [order("o-1", "1", "0")]
        self.updates: asyncio.Queue[Any] = asyncio.Queue()
        self.list_fails = False

    async def ListVenues(self, request: Any, context: Any) -> Any:
        paper = exchange_pb2.Venue(name="paper", kind=exchange_pb2.VENUE_KIND_PAPER)
        return exchange_pb2.ListVenuesResponse(venues=[paper])

    async def ListMarkets(self, request: Any, context: Any) -> Any:
        market = exchange_pb2.Market(symbol=BTC, base="BTC", quote="USDT")
        return exchange_pb2.ListMarketsResponse(markets=[market])

    async def ListOrders(self, request: Any, context: Any) -> Any:
        if self.list_fails:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return exchange_pb2.ListOrdersResponse(orders=self.orders)

    async def GetTicker(self, request: Any, context: Any) -> Any:
        return exchange_pb2.GetTickerResponse(
            ticker=exchange_pb2.Ticker(symbol=request.symbol, bid="99", ask="101")
        )

    async def StreamTickers(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield  # pragma: no cover

    async def StreamOrderUpdates(self, request: Any, context: Any) -> AsyncIterator[Any]:
        # As the exchange does: with max_batch, what waited goes in one message.
        while (item := await self.updates.get()) is not END:
            if isinstance(item, EdgeQuantError):  # ends the stream as a service's would
                status = rpc_status.to_status(to_status(item))
                await context.abort(status.code, status.details, status.trailing_metadata)
            if not request.max_batch:
                yield exchange_pb2.StreamOrderUpdatesResponse(order=item)
                continue
            batch = [item]
            while not self.updates.empty() and len(batch) < request.max_batch:
                batch.append(self.updates.get_nowait())
            orders = [placed for placed in batch if placed is not END]
            if orders:
                yield exchange_pb2.StreamOrderUpdatesResponse(orders=orders)
            if len(orders) < len(batch):
                return


def order(
    order_id: str,
    quantity: str,
    filled: str,
    status: common_pb2.OrderStatus.ValueType = common_pb2.ORDER_STATUS_OPEN,
) -> common_pb2.Order:
    return common_pb2.Order(
        order_id=order_id,
        venue="paper",
        symbol=BTC,
        side=common_pb2.SIDE_BUY,
        quantity=quantity,
        price="100",
        filled_quantity=filled,
        status=status,
    )


async def eventually(probe: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.01)):
        if probe():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.fixture
async def feeds(tmp_path: Path) -> AsyncIterator[tuple[AccountFeeds, Portfolio, Exchange]]:
    portfolio, exchange = Portfolio(), Exchange()  # type: ignore[abstract]
    database = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    engine = RiskEngine(
        limits=Limits(),
        trading_state=initial_state(datetime.now(UTC)),
        repository=RiskRepository(session_factory(database)),
        events=risk_events(),
    )
    async with (
        serving(portfolio, portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server) as p,
        serving(exchange, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as e,
        grpc.aio.insecure_channel(p) as portfolio_channel,
        grpc.aio.insecure_channel(e) as exchange_channel,
    ):
        settings = FeedSettings(retry_seconds=0.01)
        feed = Feeds(engine, settings, portfolio_channel, exchange_channel)
        task = asyncio.create_task(feed.run())
        await eventually(lambda: "paper" in feed.accounts and engine.accounts["paper"].book.fresh)
        yield feed.accounts["paper"], portfolio, exchange
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await database.dispose()


async def test_order_updates_keep_the_open_orders(
    feeds: tuple[AccountFeeds, Portfolio, Exchange],
) -> None:
    feed, _, exchange = feeds
    book = feed.book
    assert book.open_orders["o-1"].remaining == D("1")
    await exchange.updates.put(order("o-1", "1", "0.4", common_pb2.ORDER_STATUS_PARTIALLY_FILLED))
    await eventually(lambda: book.open_orders["o-1"].remaining == D("0.6"))
    await exchange.updates.put(order("o-2", "2", "0"))
    await eventually(lambda: "o-2" in book.open_orders)
    assert book.open_quantity(BTC, OrderSide.BUY) == D("2.6")
    await exchange.updates.put(order("o-1", "1", "1", common_pb2.ORDER_STATUS_FILLED))
    await exchange.updates.put(order("o-2", "2", "0", common_pb2.ORDER_STATUS_CANCELED))
    await eventually(lambda: not book.open_orders)


async def test_an_order_of_unknown_outcome_counts_open_and_its_alert_tells_the_operator(
    feeds: tuple[AccountFeeds, Portfolio, Exchange],
) -> None:
    feed, _, exchange = feeds
    book, events = feed.book, feed.engine.events
    received: list[Any] = []

    async def listen() -> None:
        async with events.subscribed() as items:
            async for event in items:
                received.append(event)

    listener = asyncio.create_task(listen())
    await eventually(lambda: events.subscriber_count == 1)
    unknown = order("o-9", "2", "0", common_pb2.ORDER_STATUS_PENDING_NEW)
    unknown.client_order_id = "c-9"
    unknown.reject_reasons.append("VENUE_OUTCOME_UNKNOWN")
    unknown.update_time.CopyFrom(Timestamp(seconds=10))
    await exchange.updates.put(unknown)
    await eventually(lambda: "o-9" in book.open_orders)
    # It may be live at the venue: its full size is open, beside o-1's 1.
    assert book.open_quantity(BTC, OrderSide.BUY) == D("3")
    assert received == []  # first news of it: no alert yet
    # Past the alert window the exchange publishes it again, unchanged.
    await exchange.updates.put(unknown)
    await eventually(lambda: len(received) == 1)
    alert = received[0]
    assert alert.type is RiskEventType.ORDER_OUTCOME_UNKNOWN
    assert (alert.order_id, alert.client_order_id, alert.account_id) == ("o-9", "c-9", "paper")
    # The venue answers: it rests, then is canceled; no further alert.
    settled = order("o-9", "2", "0.5", common_pb2.ORDER_STATUS_PARTIALLY_FILLED)
    settled.update_time.CopyFrom(Timestamp(seconds=20))
    await exchange.updates.put(settled)
    await eventually(lambda: book.open_quantity(BTC, OrderSide.BUY) == D("2.5"))
    await exchange.updates.put(settled)
    await exchange.updates.put(order("o-9", "2", "0.5", common_pb2.ORDER_STATUS_CANCELED))
    await eventually(lambda: "o-9" not in book.open_orders)
    assert len(received) == 1
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)


async def test_position_updates_move_cash_and_count_losing_trades(
    feeds: tuple[AccountFeeds, Portfolio, Exchange],
) -> None:
    feed, portfolio, _ = feeds
    book = feed.book

    def position(quantity: str, cost: str, realized: str, second: int) -> Any:
        return portfolio_pb2.Position(
            symbol=BTC,
            quantity=quantity,
            cost_basis=cost,
            realized_pnl=realized,
            update_time=Timestamp(seconds=second),
        )

    await portfolio.updates.put(position("5", "500", "0", 1))  # bought 5 at 100
    await eventually(lambda: book.position(BTC) == 5)
    assert book.cash == D("500")
    assert book.mark(BTC) == D("100")  # the mid of 99 / 101, read for the new position
    await portfolio.updates.put(position("0", "0", "-20", 2))  # sold all at 96
    await eventually(lambda: book.position(BTC) == 0)
    assert (book.cash, book.losing_streak) == (D("980"), 1)


async def test_a_lost_peer_leaves_the_book_stale_until_the_snapshot_is_read_again(
    feeds: tuple[AccountFeeds, Portfolio, Exchange],
) -> None:
    feed, _, exchange = feeds
    book = feed.book
    exchange.list_fails = True
    await exchange.updates.put(END)
    await eventually(lambda: not book.fresh)
    assert book.stale_sources() == ["markets", "orders"]
    exchange.orders = [order("o-3", "3", "0")]
    exchange.list_fails = False
    await eventually(lambda: book.fresh)
    assert list(book.open_orders) == ["o-3"]  # the snapshot, not the old state


@pytest.mark.parametrize(
    ("ending", "level"),
    [(STOPPING, logging.INFO), (Unavailable("connection reset"), logging.WARNING)],
    ids=["planned stop", "failure"],
)
async def test_a_peers_planned_stop_is_no_warning_its_failure_is(
    feeds: tuple[AccountFeeds, Portfolio, Exchange],
    caplog: pytest.LogCaptureFixture,
    ending: EdgeQuantError,
    level: int,
) -> None:
    """A stack's stop ends risk's synced feeds as its peers stop first: an operator reading
    the log should not find warnings for it."""
    _, _, exchange = feeds
    caplog.set_level(logging.INFO, logger="edgequant.risk.feeds")
    await exchange.updates.put(ending)

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("orders feed of paper")]

    await eventually(lambda: bool(logged()))
    assert logged()[0].levelno == level
    assert ending.message in logged()[0].getMessage()


def test_the_mark_is_the_mid_or_else_the_last_trade() -> None:
    assert mark_price(exchange_pb2.Ticker(bid="99", ask="101", last="150")) == D("100")
    assert mark_price(exchange_pb2.Ticker(bid="99", last="150")) == D("150")
    assert mark_price(exchange_pb2.Ticker()) is None
