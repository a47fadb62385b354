"""A small test venue for the strategy runner's tests and benchmark: a real
ExchangeService over gRPC that serves a dataset's candles as the test releases them
(StreamCandles, GetCandles)
and fills market orders at the bar engine's fill assumption (the close of the last
closed candle: `FillTiming.SAME_CLOSE`), or, for a stop trigger, at the last tick.

The test drives time: `release(k)` closes the next k candles (after their ticks, when
ticks are on). client_order_id is idempotent as on the real exchange: the same id with
the same parameters answers the original order.
"""

# Servicer methods are named by the proto and ignore what they are not asked.
# ruff: noqa: N802, ARG002

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from common.config import PROJECT_ROOT
from common.errors import FailedPrecondition, NotFound
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.strategy.reasons import ExchangeReason

# Real candles (freqtrade's test data; see that directory's README.md for their origin).
DATA = PROJECT_ROOT / "tests" / "services" / "backtest" / "data"


def load_candles(name: str = "ADA_BTC-5m.json.gz", count: int | None = None) -> list[list[float]]:
    """[ts_ms, open, high, low, close, volume] rows of a real dataset (freqtrade's)."""
    with gzip.open(DATA / name, "rt") as file:
        rows: list[list[float]] = json.load(file)
    return rows[:count] if count else rows


def _text(value: float) -> str:
    return format(Decimal(repr(value)), "f")


def _stamp(milliseconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(int(milliseconds))
    return stamp


@dataclass
class CandleVenue(exchange_pb2_grpc.ExchangeServiceServicer):
    rows: list[list[float]]
    venue: str = "paper"
    kind: exchange_pb2.VenueKind.ValueType = exchange_pb2.VENUE_KIND_PAPER
    symbol: str = "ADA/BTC"
    # Further markets listed (same candles): for one-runner-per-symbol and capital tests.
    other_symbols: tuple[str, ...] = ("ETH/BTC",)
    base: str = "ADA"
    quote: str = "BTC"
    quote_balance: str = "1"
    taker_fee: str = "0.001"
    quantity_increment: str = "0.00000001"
    released: int = 0
    # Ticks inside each bar (open, then the extreme nearer the open, the other, close).
    ticks: bool = False
    # Orders are refused with this reason (risk HALTED, say) while it is set.
    deny_reason: str = ""
    orders: dict[str, common_pb2.Order] = field(default_factory=dict)
    executions: list[common_pb2.Execution] = field(default_factory=list)
    last_tick: Decimal | None = None
    submissions: int = 0
    # perf_counter() when each candle was released (by index) and each order arrived
    # (by client_order_id): the bench's decision latency.
    released_at: dict[int, float] = field(default_factory=dict)
    submitted_at: dict[str, float] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tick_log: list[Decimal] = field(default_factory=list)

    # -- test controls ---------------------------------------------------------------

    async def release(self, count: int = 1) -> None:
        for _ in range(count):
            row = self.rows[self.released]
            if self.ticks:
                for price in _path(row):
                    self.last_tick = price
                    self._tick_log.append(price)
                    async with self._changed:
                        self._changed.notify_all()
                    # The runner reads each tick before the next one comes.
                    await asyncio.sleep(0.02)
            self.released_at[self.released] = time.perf_counter()
            self.released += 1
            async with self._changed:
                self._changed.notify_all()

    def candle(self, index: int) -> common_pb2.Candle:
        ts, o, h, low, c, v = self.rows[index][:6]
        return common_pb2.Candle(
            open_time=_stamp(int(ts)),
            open=_text(o),
            high=_text(h),
            low=_text(low),
            close=_text(c),
            volume=_text(v),
        )

    # -- ExchangeService ---------------------------------------------------------------

    async def ListVenues(self, request: Any, context: Any) -> exchange_pb2.ListVenuesResponse:
        return exchange_pb2.ListVenuesResponse(
            venues=[exchange_pb2.Venue(name=self.venue, kind=self.kind, available=True)]
        )

    async def ListMarkets(self, request: Any, context: Any) -> exchange_pb2.ListMarketsResponse:
        return exchange_pb2.ListMarketsResponse(
            markets=[
                exchange_pb2.Market(
                    symbol=symbol,
                    base=symbol.split("/")[0],
                    quote=self.quote,
                    type=exchange_pb2.MARKET_TYPE_SPOT,
                    active=True,
                    price_increment="0.00000001",
                    quantity_increment=self.quantity_increment,
                    min_quantity="0",
                    min_notional="0",
                    maker_fee=self.taker_fee,
                    taker_fee=self.taker_fee,
                )
                for symbol in (self.symbol, *self.other_symbols)
            ]
        )

    async def GetBalances(self, request: Any, context: Any) -> exchange_pb2.GetBalancesResponse:
        return exchange_pb2.GetBalancesResponse(
            balances=[
                common_pb2.Balance(
                    asset=self.quote,
                    free=self.quote_balance,
                    locked="0",
                    total=self.quote_balance,
                )
            ]
        )

    async def GetCandles(
        self, request: exchange_pb2.GetCandlesRequest, context: Any
    ) -> exchange_pb2.GetCandlesResponse:
        limit = request.limit or 500
        first = max(0, self.released - limit)
        return exchange_pb2.GetCandlesResponse(
            candles=[self.candle(index) for index in range(first, self.released)]
        )

    async def StreamCandles(
        self, request: Any, context: Any
    ) -> AsyncIterator[exchange_pb2.StreamCandlesResponse]:
        after = request.after.ToMilliseconds()
        index = next((i for i in range(self.released) if self.rows[i][0] > after), self.released)
        while True:
            while index < self.released:
                yield exchange_pb2.StreamCandlesResponse(candle=self.candle(index))
                index += 1
            async with self._changed:
                await self._changed.wait_for(lambda: self.released > index)  # noqa: B023

    async def StreamTickers(
        self, request: Any, context: Any
    ) -> AsyncIterator[exchange_pb2.StreamTickersResponse]:
        seen = len(self._tick_log)
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._tick_log) > seen)  # noqa: B023
            while seen < len(self._tick_log):
                price = str(self._tick_log[seen])
                seen += 1
                yield exchange_pb2.StreamTickersResponse(
                    ticker=exchange_pb2.Ticker(
                        venue=self.venue, symbol=self.symbol, last=price, bid=price, ask=price
                    )
                )

    async def SubmitOrder(
        self, request: exchange_pb2.SubmitOrderRequest, context: Any
    ) -> exchange_pb2.SubmitOrderResponse:
        self.submissions += 1
        self.submitted_at.setdefault(request.client_order_id, time.perf_counter())
        existing = self.orders.get(request.client_order_id)
        if existing is not None:
            if existing.quantity != request.quantity or existing.side != request.side:
                raise FailedPrecondition(
                    "client_order_id reused", reason=ExchangeReason.CLIENT_ORDER_ID_REUSED
                )
            return exchange_pb2.SubmitOrderResponse(order=existing)
        if self.deny_reason:
            raise FailedPrecondition(
                f"order rejected by risk: {self.deny_reason}", reason=self.deny_reason
            )
        # A stop trigger's id ends with "s" (stop-loss) or "t" (take-profit).
        stop = request.client_order_id[-1] in "st"
        price = (
            self.last_tick
            if stop and self.last_tick is not None
            else Decimal(self.candle(self.released - 1).close)
        )
        quantity = Decimal(request.quantity)
        fee = quantity * price * Decimal(self.taker_fee)
        order_id = f"o{len(self.orders) + 1}"
        order = common_pb2.Order(
            order_id=order_id,
            client_order_id=request.client_order_id,
            venue=self.venue,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            quantity=request.quantity,
            status=common_pb2.ORDER_STATUS_FILLED,
            filled_quantity=request.quantity,
            average_fill_price=str(price),
            fee=str(fee),
            fee_currency=self.quote,
        )
        self.orders[request.client_order_id] = order
        self.executions.append(
            common_pb2.Execution(
                sequence=len(self.executions) + 1,
                venue=self.venue,
                trade_id=f"t{len(self.executions) + 1}",
                order_id=order_id,
                client_order_id=request.client_order_id,
                symbol=request.symbol,
                side=request.side,
                quantity=request.quantity,
                price=str(price),
                fee=str(fee),
                fee_currency=self.quote,
            )
        )
        async with self._changed:
            self._changed.notify_all()
        return exchange_pb2.SubmitOrderResponse(order=order)

    async def GetOrder(
        self, request: exchange_pb2.GetOrderRequest, context: Any
    ) -> exchange_pb2.GetOrderResponse:
        order = self.orders.get(request.client_order_id)
        if order is None:
            raise NotFound("no such order", reason=ExchangeReason.ORDER_NOT_FOUND)
        return exchange_pb2.GetOrderResponse(order=order)

    async def ListOrders(self, request: Any, context: Any) -> exchange_pb2.ListOrdersResponse:
        return exchange_pb2.ListOrdersResponse()

    async def CancelOrder(self, request: Any, context: Any) -> exchange_pb2.CancelOrderResponse:
        raise NotFound("no open order", reason=ExchangeReason.ORDER_NOT_FOUND)

    async def StreamExecutions(
        self, request: exchange_pb2.StreamExecutionsRequest, context: Any
    ) -> AsyncIterator[exchange_pb2.StreamExecutionsResponse]:
        index = request.after_seq
        while True:
            while index < len(self.executions):
                yield exchange_pb2.StreamExecutionsResponse(execution=self.executions[index])
                index += 1
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.executions) > index)  # noqa: B023


def _path(row: list[float]) -> list[Decimal]:
    """The ticks of a bar: open, the extreme nearer the open first, the other, close."""
    _ts, o, h, low, c = row[:5]
    extremes = (low, h) if abs(o - low) <= abs(h - o) else (h, low)
    return [Decimal(_text(value)) for value in (o, *extremes, c)]


__all__ = ["CandleVenue", "load_candles"]
