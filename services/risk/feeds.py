"""The feeds that keep each venue account's risk book in sync with the portfolio and
the exchange.

The accounts are the exchange's venues (ListVenues, re-read every
`venues_refresh_seconds`; the kind from there, never from the name): each gets its own
book and its own feeds, the portfolio's account of the same id and the exchange's
venue. Each feed subscribes to its stream first, then reads a snapshot, then applies the
stream: nothing between the two is lost, and after a restart the book is rebuilt the
same way. While a feed is down its source is marked unsynced, so CheckOrder denies
with RISK_STATE_STALE (fail closed) until the feed has re-read its snapshot.

- portfolio: GetPortfolio (cash), ListPositions, GetEquityHistory (the equity peak and
  the UTC day's opening equity), then StreamPositions; cash is re-read periodically.
  The portfolio's net transfers (deposits, withdrawals) come with the cash: the peak
  and the day's opening equity move by them (net of flows), so no transfer is a loss.
- markets and orders: ListMarkets, ListOrders (open ones), then StreamOrderUpdates.
  An order of unknown outcome (PENDING_NEW with VENUE_OUTCOME_UNKNOWN) may be live at
  the venue: it counts open at its full size until the exchange settles it. Past its
  alert window the exchange publishes the order again unchanged (same update_time):
  risk then publishes an ORDER_OUTCOME_UNKNOWN event.
- tickers: GetTicker for the symbols that matter, then StreamTickers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import grpc

from common.errors import reason_of
from common.reasons import CommonReason
from common.reconnect import DEFAULT_MAX_SECONDS, Reconnect
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.risk.engine import AccountRisk, RiskEngine
from services.risk.risk_book import ZERO, Market, OpenOrder, OrderSide, Position
from services.risk.settings import FeedSettings

log = logging.getLogger("edgequant.risk.feeds")

OPEN_STATUSES = (
    common_pb2.ORDER_STATUS_PENDING_NEW,
    common_pb2.ORDER_STATUS_OPEN,
    common_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    common_pb2.ORDER_STATUS_PENDING_CANCEL,
)
PAGE_SIZE = 1000
# Order updates per StreamOrderUpdates message: an order's PENDING_NEW and its fill are
# published back to back, and under a load what waited goes in one message (each costs
# both sides more CPU than applying it).
ORDER_UPDATES_BATCH = 100
# Marks twice a second: fresh enough for a price band of percent and for exposure, and
# at most 2 ticker messages a second a symbol, not 10 (each costs more to receive than
# the mark is worth).
MARKS_INTERVAL_MS = 500
# The reason an order PENDING_NEW carries while its outcome at the venue is unknown.
OUTCOME_UNKNOWN = "VENUE_OUTCOME_UNKNOWN"
# An unknown order listed at sync and then streamed unchanged within this many seconds
# is an update that was in flight during the sync, not the exchange's alert.
SYNC_RACE_SECONDS = 5.0


def decimal_or_none(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def decimal_or_zero(text: str) -> Decimal:
    return Decimal(text) if text else ZERO


VENUE_KINDS = {
    exchange_pb2.VENUE_KIND_PAPER: "paper",
    exchange_pb2.VENUE_KIND_SANDBOX: "sandbox",
    exchange_pb2.VENUE_KIND_LIVE: "live",
}


class Feeds:
    """Lists the exchange's venues and runs an `AccountFeeds` for each."""

    def __init__(
        self,
        engine: RiskEngine,
        settings: FeedSettings,
        portfolio: grpc.aio.Channel,
        exchange: grpc.aio.Channel,
        on_account: Callable[[AccountRisk], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.portfolio = portfolio_pb2_grpc.PortfolioServiceStub(portfolio)
        self.exchange = exchange_pb2_grpc.ExchangeServiceStub(exchange)
        # Called for each account when it is first listed (the VaR guard hooks in).
        self.on_account = on_account
        self.accounts: dict[str, AccountFeeds] = {}
        # Market-data-only venues (`read_only` in ListVenues): no book, no feeds, and
        # readiness does not wait for them; their orders never reach risk.
        self.read_only: set[str] = set()

    async def run(self) -> None:
        """Lists the venues until cancelled; every account's feeds run beside."""
        reconnect = _reconnect("exchange venues", self.settings)

        async def list_venues(group: asyncio.TaskGroup) -> None:
            while True:
                venues = await self.exchange.ListVenues(
                    exchange_pb2.ListVenuesRequest(), timeout=self.settings.rpc_timeout_seconds
                )
                reconnect.connected()
                for venue in venues.venues:
                    if venue.read_only:
                        self._skip_read_only(venue.name)
                    elif venue.name not in self.accounts:
                        self._start(group, venue)
                self.engine.accounts_listed = True
                self.engine.note_sync()
                await asyncio.sleep(self.settings.venues_refresh_seconds)

        async with asyncio.TaskGroup() as group:
            await reconnect.forever(lambda: list_venues(group))

    def _skip_read_only(self, name: str) -> None:
        if name not in self.read_only:
            self.read_only.add(name)
            log.info("market-data-only venue: no risk account", extra={"account_id": name})

    def _start(self, group: asyncio.TaskGroup, venue: exchange_pb2.Venue) -> None:
        kind = VENUE_KINDS.get(venue.kind, "unknown")
        account = self.engine.add_account(venue.name, kind)
        feeds = self.accounts[venue.name] = AccountFeeds(
            self.engine, account, self.settings, self.portfolio, self.exchange
        )
        if self.on_account is not None:
            self.on_account(account)
        log.info("venue account added", extra={"account_id": venue.name, "kind": kind})
        group.create_task(feeds.run(), name=f"risk-feeds-{venue.name}")


class AccountFeeds:
    """The feeds of one venue account: its portfolio account and its exchange venue."""

    def __init__(
        self,
        engine: RiskEngine,
        account: AccountRisk,
        settings: FeedSettings,
        portfolio: portfolio_pb2_grpc.PortfolioServiceAsyncStub,
        exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub,
    ) -> None:
        self.engine = engine
        self.account = account
        self.book = account.book
        # The portfolio's account and the exchange's venue share the name.
        self.account_id = self.venue = account.account_id
        self.settings = settings
        self.portfolio = portfolio
        self.exchange = exchange
        self.timeout = settings.rpc_timeout_seconds
        # Orders of unknown outcome: their last update_time, whether it came from the
        # stream, and when (monotonic) it was seen.
        self._unknown: dict[str, tuple[datetime | None, bool, float]] = {}
        self._reconnects: dict[str, Reconnect] = {}

    async def run(self) -> None:
        """Runs every feed until cancelled, each reconnecting on its own."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._forever("portfolio", self._portfolio))
            group.create_task(self._forever("orders", self._orders))
            group.create_task(self._forever("tickers", self._tickers))
            group.create_task(self._forever("cash", self._refresh_cash))

    async def _forever(self, name: str, feed: Callable[[], Awaitable[None]]) -> None:
        reconnect = self._reconnects[name] = _reconnect(
            f"{name} feed of {self.account_id}", self.settings
        )

        async def attempt() -> None:
            try:
                await feed()
            except grpc.aio.AioRpcError as error:
                # A synced feed that dropped is worth a warning; one still connecting
                # (peers starting, an account the portfolio is opening) or ended by its
                # peer's planned stop is not.
                dropped = all(source in self.book.synced for source in _SOURCES[name])
                stopped = reason_of(error) == CommonReason.SERVICE_STOPPING
                log.log(
                    logging.WARNING if dropped and not stopped else logging.INFO,
                    "%s feed of %s failed: %s %s; retrying",
                    name,
                    self.account_id,
                    error.code().name,
                    error.details(),
                )
                raise
            finally:
                for source in _SOURCES[name]:
                    self.book.synced.discard(source)

        await reconnect.forever(attempt)

    def _synced(self, name: str) -> None:
        """A feed has read its snapshot: its sources are fresh, its backoff starts over."""
        self.book.synced.update(_SOURCES[name])
        self._reconnects[name].connected()

    # --- portfolio -----------------------------------------------------------------------

    async def _portfolio(self) -> None:
        account = self.account_id
        stream = self.portfolio.StreamPositions(
            portfolio_pb2.StreamPositionsRequest(account_id=account)
        )
        try:
            # The portfolio sends its headers once subscribed: no change made after the
            # snapshot below is read can be missed.
            await stream.initial_metadata()
            portfolio = (
                await self.portfolio.GetPortfolio(
                    portfolio_pb2.GetPortfolioRequest(account_id=account), timeout=self.timeout
                )
            ).portfolio
            positions = [position async for position in self._list_positions()]
            self._load_portfolio(portfolio, positions)
            await self._fetch_missing_marks()
            await self._load_equity_history()
            self._synced("portfolio")
            await self.engine.after_equity_change(self.account)
            log.info(
                "portfolio synced",
                extra={"account_id": self.account_id, "positions": len(positions)},
            )
            async for response in stream:
                self._apply_position(response.position)
                await self._fetch_missing_marks()
                await self.engine.after_equity_change(self.account)
        finally:
            stream.cancel()

    async def _list_positions(self) -> AsyncIterator[portfolio_pb2.Position]:
        token = ""
        while True:
            page = await self.portfolio.ListPositions(
                portfolio_pb2.ListPositionsRequest(
                    account_id=self.account_id, page_size=PAGE_SIZE, page_token=token
                ),
                timeout=self.timeout,
            )
            for position in page.positions:
                yield position
            token = page.next_page_token
            if not token:
                return

    async def _fetch_missing_marks(self) -> None:
        """A position in a symbol the ticker feed has not priced yet is priced at once."""
        for symbol in self.book.unmarked_positions():
            response = await self.exchange.GetTicker(
                exchange_pb2.GetTickerRequest(venue=self.venue, symbol=symbol),
                timeout=self.timeout,
            )
            self._apply_ticker(response.ticker)

    def _load_portfolio(
        self, portfolio: portfolio_pb2.Portfolio, positions: list[portfolio_pb2.Position]
    ) -> None:
        for position in positions:
            self._seed_mark(position)
        self.book.apply_transfers(decimal_or_zero(portfolio.net_transfers))
        self.book.reset_portfolio(
            decimal_or_zero(portfolio.cash),
            {
                position.symbol: Position(
                    quantity=decimal_or_zero(position.quantity),
                    cost_basis=decimal_or_zero(position.cost_basis),
                    realized_pnl=decimal_or_zero(position.realized_pnl),
                    update_time=_update_time(position),
                )
                for position in positions
            },
        )

    def _seed_mark(self, position: portfolio_pb2.Position) -> None:
        """The portfolio's mark stands in until the exchange's ticker arrives."""
        if position.mark_price and position.symbol not in self.book.marks:
            self.book.marks[position.symbol] = Decimal(position.mark_price)

    def _apply_position(self, position: portfolio_pb2.Position) -> None:
        self._seed_mark(position)
        self.book.apply_position(
            position.symbol,
            quantity=decimal_or_zero(position.quantity),
            cost_basis=decimal_or_zero(position.cost_basis),
            realized_pnl=decimal_or_zero(position.realized_pnl),
            update_time=_update_time(position),
            now=self.engine.utc_now(),
        )

    async def _load_equity_history(self) -> None:
        """The equity peak and the UTC day's opening equity, as the portfolio recorded them.
        Without a history (a new account) they start from the current equity."""
        try:
            response = await self.portfolio.GetEquityHistory(
                portfolio_pb2.GetEquityHistoryRequest(account_id=self.account_id),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.UNIMPLEMENTED:
                raise
            log.warning("portfolio has no equity history: the peak starts from now")
            return
        now = self.engine.utc_now()
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
        day_start: Decimal | None = None
        for point in response.points:
            # As if every transfer since had been there already: net of flows.
            equity = (
                Decimal(point.equity) - decimal_or_zero(point.net_transfers) + self.book.transfers
            )
            self.book.equity_peak = max(self.book.equity_peak, equity)
            if point.time.ToDatetime(UTC) <= midnight or day_start is None:
                day_start = equity
        if day_start is not None:
            self.book.day = now.date()
            self.book.day_start_equity = day_start

    async def _refresh_cash(self) -> None:
        """Cash as the portfolio books it (fees included), while the portfolio feed is up."""
        while True:
            await asyncio.sleep(self.settings.portfolio_refresh_seconds)
            if "portfolio" not in self.book.synced:
                continue
            response = await self.portfolio.GetPortfolio(
                portfolio_pb2.GetPortfolioRequest(account_id=self.account_id),
                timeout=self.timeout,
            )
            self._reconnects["cash"].connected()
            # Together: a transfer's cash comes with its shift of the day's opening
            # equity and the peak, so it is never taken for a loss or a gain.
            self.book.apply_transfers(decimal_or_zero(response.portfolio.net_transfers))
            self.book.cash = decimal_or_zero(response.portfolio.cash)
            await self.engine.after_equity_change(self.account)

    # --- markets and orders ------------------------------------------------------------

    async def _orders(self) -> None:
        venue = self.venue
        stream = self.exchange.StreamOrderUpdates(
            exchange_pb2.StreamOrderUpdatesRequest(venue=venue, max_batch=ORDER_UPDATES_BATCH)
        )
        try:
            markets = await self.exchange.ListMarkets(
                exchange_pb2.ListMarketsRequest(venue=venue), timeout=self.timeout
            )
            self.book.markets = {m.symbol: _market(m) for m in markets.markets}
            self.book.open_orders.clear()
            self._unknown.clear()
            async for order in self._list_open_orders():
                self._apply_order(order, streamed=False)
            self._synced("orders")
            await self.engine.after_equity_change(self.account)
            log.info(
                "orders synced",
                extra={"account_id": self.account_id, "open_orders": len(self.book.open_orders)},
            )
            async for response in stream:
                # `order` alone from an exchange that predates batches.
                for order in response.orders or [response.order]:
                    self._apply_order(order, streamed=True)
        finally:
            stream.cancel()

    async def _list_open_orders(self) -> AsyncIterator[common_pb2.Order]:
        token = ""
        while True:
            page = await self.exchange.ListOrders(
                exchange_pb2.ListOrdersRequest(
                    venue=self.venue,
                    statuses=OPEN_STATUSES,
                    page_size=PAGE_SIZE,
                    page_token=token,
                ),
                timeout=self.timeout,
            )
            for order in page.orders:
                yield order
            token = page.next_page_token
            if not token:
                return

    def _apply_order(self, order: common_pb2.Order, *, streamed: bool) -> None:
        if order.venue and order.venue != self.venue:
            return
        unknown = (
            order.status == common_pb2.ORDER_STATUS_PENDING_NEW
            and OUTCOME_UNKNOWN in order.reject_reasons
        )
        if unknown:
            # It may be live (even filled) at the venue: its full size counts.
            remaining = decimal_or_zero(order.quantity)
            self._note_unknown(order, streamed)
        else:
            self._unknown.pop(order.order_id, None)
            remaining = decimal_or_zero(order.quantity) - decimal_or_zero(order.filled_quantity)
        if order.status not in OPEN_STATUSES or remaining <= 0:
            self.engine.apply_order(self.account_id, order.order_id, None)
            return
        self.engine.apply_order(
            self.account_id,
            order.order_id,
            OpenOrder(
                order_id=order.order_id,
                symbol=order.symbol,
                side=OrderSide.BUY if order.side == common_pb2.SIDE_BUY else OrderSide.SELL,
                remaining=remaining,
                price=decimal_or_none(order.price),
            ),
        )

    def _note_unknown(self, order: common_pb2.Order, streamed: bool) -> None:
        """An order of unknown outcome streamed again unchanged is the exchange's alert
        (its outcome is still unknown past the alert window): the operator is told."""
        update_time = order.update_time.ToDatetime(UTC) if order.HasField("update_time") else None
        now = time.monotonic()
        seen = self._unknown.get(order.order_id)
        self._unknown[order.order_id] = (update_time, streamed, now)
        if not streamed or seen is None:
            return
        seen_time, seen_streamed, seen_at = seen
        if seen_time != update_time:
            return
        if not seen_streamed and now - seen_at < SYNC_RACE_SECONDS:
            return
        self.engine.report_unknown_outcome(
            self.account_id,
            order.order_id,
            order.client_order_id,
            order.reject_message or "the venue has not confirmed nor denied it",
        )

    # --- tickers -------------------------------------------------------------------------

    async def _tickers(self) -> None:
        venue = self.venue
        stream = self.exchange.StreamTickers(
            exchange_pb2.StreamTickersRequest(venue=venue, min_interval_ms=MARKS_INTERVAL_MS)
        )
        try:
            for symbol in sorted(self._symbols_that_matter()):
                response = await self.exchange.GetTicker(
                    exchange_pb2.GetTickerRequest(venue=venue, symbol=symbol), timeout=self.timeout
                )
                self._apply_ticker(response.ticker)
            self._synced("tickers")
            await self.engine.after_equity_change(self.account)
            async for update in stream:
                self._apply_ticker(update.ticker)
                if update.ticker.symbol in self.book.positions:
                    await self.engine.after_equity_change(self.account)
        finally:
            stream.cancel()

    def _symbols_that_matter(self) -> set[str]:
        return (
            set(self.account.limits.allowed_symbols)
            | {symbol for symbol, p in self.book.positions.items() if p.quantity}
            | {order.symbol for order in self.book.open_orders.values()}
        )

    def _apply_ticker(self, ticker: exchange_pb2.Ticker) -> None:
        mark = mark_price(ticker)
        if mark is not None:
            self.book.marks[ticker.symbol] = mark


def _update_time(position: portfolio_pb2.Position) -> datetime | None:
    return position.update_time.ToDatetime(UTC) if position.HasField("update_time") else None


def mark_price(ticker: exchange_pb2.Ticker) -> Decimal | None:
    """The mid of bid and ask when both are quoted, else the last trade."""
    if ticker.bid and ticker.ask:
        return (Decimal(ticker.bid) + Decimal(ticker.ask)) / 2
    return decimal_or_none(ticker.last)


def _market(market: exchange_pb2.Market) -> Market:
    return Market(
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        spot=market.type in (exchange_pb2.MARKET_TYPE_SPOT, exchange_pb2.MARKET_TYPE_UNSPECIFIED),
        price_increment=decimal_or_none(market.price_increment),
        quantity_increment=decimal_or_none(market.quantity_increment),
        min_quantity=decimal_or_none(market.min_quantity),
        max_quantity=decimal_or_none(market.max_quantity),
        min_notional=decimal_or_none(market.min_notional),
    )


_SOURCES: dict[str, tuple[str, ...]] = {
    "portfolio": ("portfolio",),
    "orders": ("markets", "orders"),
    "tickers": ("tickers",),
    # The cash refresh makes no source fresh: the portfolio feed does.
    "cash": (),
}


def _reconnect(what: str, settings: FeedSettings) -> Reconnect:
    return Reconnect(
        what,
        initial_seconds=settings.retry_seconds,
        max_seconds=max(settings.retry_seconds, DEFAULT_MAX_SECONDS),
    )
