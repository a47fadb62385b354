"""ExchangeService: translates each RPC to the exchange domain and back.

One method per RPC, named as in protos/edgequant/exchange/v1/exchange.proto.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from common import paging, timeframes
from common.service import Context
from common.validation import Violations
from edgequant.exchange.v1 import exchange_pb2_grpc
from edgequant.exchange.v1.exchange_pb2 import (
    CancelAllOrdersRequest,
    CancelAllOrdersResponse,
    CancelOrderRequest,
    CancelOrderResponse,
    GetBalancesRequest,
    GetBalancesResponse,
    GetCandlesRequest,
    GetCandlesResponse,
    GetOrderBookRequest,
    GetOrderBookResponse,
    GetOrderRequest,
    GetOrderResponse,
    GetTickerRequest,
    GetTickerResponse,
    ListMarketsRequest,
    ListMarketsResponse,
    ListOrdersRequest,
    ListOrdersResponse,
    ListVenuesRequest,
    ListVenuesResponse,
    StreamCandlesRequest,
    StreamCandlesResponse,
    StreamExecutionsRequest,
    StreamExecutionsResponse,
    StreamOrderUpdatesRequest,
    StreamOrderUpdatesResponse,
    StreamTickersRequest,
    StreamTickersResponse,
    SubmitOrderRequest,
    SubmitOrderResponse,
)
from services.exchange import convert
from services.exchange.candle_cache import DEFAULT_LIMIT, MAX_LIMIT, CandleCache
from services.exchange.markets import Balance, Ticker
from services.exchange.orderflow import OrderFlow
from services.exchange.outbox import Outbox
from services.exchange.paper.venue import PaperVenue
from services.exchange.submission import validate_order
from services.exchange.updates import OrderUpdates
from services.exchange.venue import Venue, require_trading
from services.exchange.venues import Venues

if TYPE_CHECKING:
    from services.exchange.candle_stream import CandleStreams

# What a ListOrders page token pages (common.paging refuses another listing's token).
ORDERS_PAGE = "orders"
MAX_DEPTH = 1000
# StreamExecutions' and StreamOrderUpdates' cap on `max_batch` (in the proto): ~150 KB
# messages.
MAX_STREAM_BATCH = 1000
# StreamTickers sends a subscriber at most one ticker per symbol per this many seconds,
# the latest: every fill moves the paper book, and under an order load a ticker per fill
# per subscriber was most of the messages the exchange sent (risk and the portfolio read
# only the latest mark). The paper clock's own batching is as coarse (0.1 s).
TICKER_INTERVAL_SECONDS = 0.1
# A subscriber may ask for fewer (`min_interval_ms`), up to one a minute.
MAX_TICKER_INTERVAL_MS = 60_000
# An unchanged ticker is sent again after this long (a subscriber sees the market is
# still there); a moving one goes at every interval.
TICKER_REFRESH_SECONDS = 1.0


class ExchangeServicer(exchange_pb2_grpc.ExchangeServiceServicer):
    def __init__(
        self,
        venues: Venues,
        flow: OrderFlow,
        outbox: Outbox,
        updates: OrderUpdates,
        candles: CandleCache,
    ) -> None:
        self.venues = venues
        self.flow = flow
        self.outbox = outbox
        self.updates = updates
        self.candles = candles

    @cached_property
    def candle_streams(self) -> CandleStreams:
        """StreamCandles' loops, made by the first StreamCandles: an idle exchange does not
        load candle_stream (~70 KiB of heap)."""
        from services.exchange.candle_stream import CandleStreams  # noqa: PLC0415

        return CandleStreams(self.candles)

    async def ListVenues(self, request: ListVenuesRequest, context: Context) -> ListVenuesResponse:
        return ListVenuesResponse(
            venues=[
                convert.venue(v.info, _starting_balances(v), read_only=_read_only(v))
                for v in self.venues
            ]
        )

    async def ListMarkets(
        self, request: ListMarketsRequest, context: Context
    ) -> ListMarketsResponse:
        markets = await self.venues.require(request.venue).markets()
        return ListMarketsResponse(markets=[convert.market(m) for m in markets])

    async def GetTicker(self, request: GetTickerRequest, context: Context) -> GetTickerResponse:
        venue = await self._venue_and_symbol(request.venue, request.symbol)
        ticker = await venue.ticker(request.symbol)
        return GetTickerResponse(ticker=convert.ticker(request.venue, ticker))

    async def StreamTickers(
        self, request: StreamTickersRequest, context: Context
    ) -> AsyncIterator[StreamTickersResponse]:
        problems = Violations()
        problems.require(
            0 <= request.min_interval_ms <= MAX_TICKER_INTERVAL_MS,
            "min_interval_ms",
            f"must be 0-{MAX_TICKER_INTERVAL_MS}",
        )
        problems.raise_if_any()
        venue = self.venues.require(request.venue)
        symbols = list(request.symbols) or [m.symbol for m in await venue.markets()]
        for symbol in symbols:
            await self._venue_and_symbol(request.venue, symbol)
        # A ccxt venue serves every subscriber from one shared poll.
        read = getattr(venue, "streamed_ticker", venue.ticker)
        seen = -1
        loop = asyncio.get_running_loop()
        interval = max(TICKER_INTERVAL_SECONDS, request.min_interval_ms / 1000)
        sent_at = -interval
        # Per symbol: the ticker last sent, and when.
        sent: dict[str, tuple[Ticker, float]] = {}
        while True:
            seen = await venue.tickers_changed.wait(seen)
            wait = sent_at + interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                seen = venue.tickers_changed.version  # what changed meanwhile is read now
            sent_at = loop.time()
            for symbol in symbols:
                ticker = await read(symbol)
                # A change on one market is not news of the others: a symbol goes when
                # it moved, or to say it still stands once TICKER_REFRESH_SECONDS passed.
                last = sent.get(symbol)
                if (
                    last
                    and ticker.quotes_as(last[0])
                    and sent_at - last[1] < TICKER_REFRESH_SECONDS
                ):
                    continue
                sent[symbol] = (ticker, sent_at)
                yield StreamTickersResponse(ticker=convert.ticker(request.venue, ticker))

    async def GetOrderBook(
        self, request: GetOrderBookRequest, context: Context
    ) -> GetOrderBookResponse:
        problems = Violations()
        problems.require(0 <= request.depth <= MAX_DEPTH, "depth", f"must be 0-{MAX_DEPTH}")
        problems.raise_if_any()
        venue = await self._venue_and_symbol(request.venue, request.symbol)
        book = await venue.order_book(request.symbol, request.depth)
        return GetOrderBookResponse(order_book=convert.order_book(request.venue, book))

    async def GetCandles(self, request: GetCandlesRequest, context: Context) -> GetCandlesResponse:
        problems = Violations()
        timeframe = timeframes.from_proto(request.timeframe)
        # A calendar month has no fixed length: the candle cache works in fixed widths.
        problems.require(
            timeframe is not None and timeframe.milliseconds is not None,
            "timeframe",
            "is required: TIMEFRAME_1M ... TIMEFRAME_1W (no monthly candles)",
        )
        problems.require(0 <= request.limit <= MAX_LIMIT, "limit", f"must be 0-{MAX_LIMIT}")
        problems.raise_if_any()
        assert timeframe is not None
        venue = await self._venue_and_symbol(request.venue, request.symbol)
        start = request.start_time.ToMilliseconds() if request.HasField("start_time") else None
        end = request.end_time.ToMilliseconds() if request.HasField("end_time") else None
        candles = await self.candles.candles(
            venue,
            symbol=request.symbol,
            timeframe=timeframe.name,
            start_ms=start,
            end_ms=end,
            limit=request.limit or DEFAULT_LIMIT,
        )
        return GetCandlesResponse(candles=[convert.candle(c) for c in candles])

    async def StreamCandles(
        self, request: StreamCandlesRequest, context: Context
    ) -> AsyncIterator[StreamCandlesResponse]:
        problems = Violations()
        timeframe = timeframes.from_proto(request.timeframe)
        problems.require(timeframe is not None, "timeframe", "is required (TIMEFRAME_1M, ...)")
        problems.require(
            timeframe is None or timeframe.milliseconds is not None,
            "timeframe",
            "must have a fixed length: the month is not streamed (read it with GetCandles)",
        )
        after = None
        if request.HasField("after") and problems.timestamp("after", request.after):
            after = request.after.ToMilliseconds()
        problems.raise_if_any()
        assert timeframe is not None
        assert timeframe.milliseconds is not None
        venue = await self._venue_and_symbol(request.venue, request.symbol)
        async for closed in self.candle_streams.stream(
            venue, request.symbol, timeframe.name, timeframe.milliseconds, after
        ):
            yield convert.closed_candle(closed)

    async def GetBalances(
        self, request: GetBalancesRequest, context: Context
    ) -> GetBalancesResponse:
        venue = self.venues.require(request.venue)
        require_trading(venue)
        # Read first: every execution up to it is in the balances read after it.
        as_of_sequence = self.outbox.last_sequence
        balances = await venue.balances()
        return GetBalancesResponse(
            balances=[convert.balance(b) for b in balances], as_of_sequence=as_of_sequence
        )

    async def SubmitOrder(
        self, request: SubmitOrderRequest, context: Context
    ) -> SubmitOrderResponse:
        intent = await validate_order(request, self.venues)
        order = await self.flow.submit(intent)
        return SubmitOrderResponse(order=convert.order(order))

    async def CancelOrder(
        self, request: CancelOrderRequest, context: Context
    ) -> CancelOrderResponse:
        _require("order_id", request.order_id)
        return CancelOrderResponse(order=convert.order(await self.flow.cancel(request.order_id)))

    async def CancelAllOrders(
        self, request: CancelAllOrdersRequest, context: Context
    ) -> CancelAllOrdersResponse:
        _require("venue", request.venue)
        require_trading(self.venues.require(request.venue))
        orders = await self.flow.cancel_all(request.venue, request.symbol)
        return CancelAllOrdersResponse(orders=[convert.order(o) for o in orders])

    async def GetOrder(self, request: GetOrderRequest, context: Context) -> GetOrderResponse:
        if request.order_id:
            order = await self.flow.get(request.order_id)
        else:
            problems = Violations()
            problems.require(bool(request.venue), "venue", "is required without order_id")
            problems.require(
                bool(request.client_order_id), "client_order_id", "is required without order_id"
            )
            problems.raise_if_any()
            order = await self.flow.get_by_client_id(request.venue, request.client_order_id)
        return GetOrderResponse(order=convert.order(order))

    async def ListOrders(self, request: ListOrdersRequest, context: Context) -> ListOrdersResponse:
        problems = Violations()
        page = paging.read_page(
            request.page_size, request.page_token, kind=ORDERS_PAGE, problems=problems, key_length=2
        )
        statuses = [convert.STATUS_OF.get(s) for s in request.statuses]
        problems.require(None not in statuses, "statuses", "contains an unknown status")
        before = _after_order(page, problems)
        problems.raise_if_any()
        orders = await self.flow.list(
            venue=request.venue,
            symbol=request.symbol,
            statuses=[s for s in statuses if s is not None],
            limit=page.size + 1,
            before=before,
        )
        last = orders[page.size - 1] if len(orders) > page.size else None
        token = (
            paging.page_token(ORDERS_PAGE, last.create_time.isoformat(), last.order_id)
            if last is not None
            else ""
        )
        return ListOrdersResponse(
            orders=[convert.order(o) for o in orders[: page.size]], next_page_token=token
        )

    async def StreamOrderUpdates(
        self, request: StreamOrderUpdatesRequest, context: Context
    ) -> AsyncIterator[StreamOrderUpdatesResponse]:
        _require_batch_size(request.max_batch)
        if not request.max_batch:  # a client from before batches: one per message
            async for order in self.updates.follow(request.venue):
                yield StreamOrderUpdatesResponse(order=convert.order(order))
            return
        size = min(request.max_batch, MAX_STREAM_BATCH)
        async for batch in self.updates.follow_in_batches(size, request.venue):
            yield StreamOrderUpdatesResponse(orders=[convert.order(order) for order in batch])

    async def StreamExecutions(
        self, request: StreamExecutionsRequest, context: Context
    ) -> AsyncIterator[StreamExecutionsResponse]:
        problems = Violations()
        problems.require(request.after_seq >= 0, "after_seq", "must not be negative")
        _require_batch_size(request.max_batch, problems)
        if not request.max_batch:  # a client from before batches: one per message
            async for execution in self.outbox.stream(request.after_seq):
                yield StreamExecutionsResponse(execution=convert.execution(execution))
            return
        size = min(request.max_batch, MAX_STREAM_BATCH)
        async for batch in self.outbox.batches(request.after_seq, size):
            yield StreamExecutionsResponse(executions=[convert.execution(e) for e in batch])

    async def _venue_and_symbol(self, venue_name: str, symbol: str) -> Venue:
        problems = Violations()
        problems.require(bool(venue_name), "venue", "is required")
        problems.require(bool(symbol), "symbol", "is required")
        problems.raise_if_any()
        venue = self.venues.require(venue_name)
        if await venue.market(symbol) is None:
            problems.add(
                "symbol", f"{symbol[:40]!r} is not traded on {venue_name}; see ListMarkets"
            )
            problems.raise_if_any()
        return venue


def _starting_balances(venue: Venue) -> list[Balance]:
    """The paper venue's configured starting holdings; none for ccxt venues."""
    return venue.account.starting_balances() if isinstance(venue, PaperVenue) else []


def _read_only(venue: Venue) -> bool:
    """A market-data-only venue (`trading = false`), as venue.require_trading sees it."""
    return bool(getattr(venue, "read_only", False))


def _require(field: str, value: str) -> None:
    problems = Violations()
    problems.require(bool(value), field, "is required")
    problems.raise_if_any()


def _require_batch_size(max_batch: int, problems: Violations | None = None) -> None:
    """Raises every violation in `problems` (the request's others) and max_batch's own."""
    problems = Violations() if problems is None else problems
    problems.require(max_batch >= 0, "max_batch", "must not be negative")
    problems.raise_if_any()


def _after_order(page: paging.Page, problems: Violations) -> tuple[datetime, str] | None:
    """The (create time, order id) a ListOrders page continues after."""
    if page.after is None:
        return None
    time, order_id = page.after
    try:
        return datetime.fromisoformat(time), order_id
    except ValueError:
        problems.add("page_token", "is not a token this service gave out")
        return None
