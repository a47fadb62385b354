"""The runner's view of the exchange: one thin client over ExchangeService (and the
backtest service's GetResult), turning messages into the runner's domain types.

It is the strategy service's client of its peers, so it speaks their messages; nothing
past it sees a proto number (an order's status arrives here as `OrderStatus`)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from common import timeframes
from common.errors import reason_of
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.strategy.reasons import ExchangeReason
from services.strategy.runners import (
    OPEN_STATUSES,
    ZERO,
    Fill,
    MarketRules,
    Mode,
    OrderStatus,
    runner_of,
)

if TYPE_CHECKING:
    from edgequant.backtest.v1 import backtest_pb2_grpc

_MODES = {
    exchange_pb2.VENUE_KIND_PAPER: Mode.PAPER,
    exchange_pb2.VENUE_KIND_SANDBOX: Mode.SANDBOX,
    exchange_pb2.VENUE_KIND_LIVE: Mode.LIVE,
}
# The exchange's order statuses, each named (UNSPECIFIED: none, the order is unanswered).
_STATUSES: dict[common_pb2.OrderStatus.ValueType, OrderStatus] = {
    common_pb2.ORDER_STATUS_PENDING_NEW: OrderStatus.PENDING_NEW,
    common_pb2.ORDER_STATUS_OPEN: OrderStatus.OPEN,
    common_pb2.ORDER_STATUS_PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    common_pb2.ORDER_STATUS_FILLED: OrderStatus.FILLED,
    common_pb2.ORDER_STATUS_PENDING_CANCEL: OrderStatus.PENDING_CANCEL,
    common_pb2.ORDER_STATUS_CANCELED: OrderStatus.CANCELED,
    common_pb2.ORDER_STATUS_REJECTED: OrderStatus.REJECTED,
    common_pb2.ORDER_STATUS_EXPIRED: OrderStatus.EXPIRED,
}
_EXCHANGE_STATUSES = {status: number for number, status in _STATUSES.items()}
# ListOrders' filter for the orders a restart cancels.
_OPEN_FILTER = sorted(_EXCHANGE_STATUSES[status] for status in OPEN_STATUSES)


@dataclass(frozen=True)
class Bar:
    """A closed candle: floats for the strategy, its close as a Decimal for orders."""

    open_time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_decimal: Decimal

    @property
    def open_time(self) -> datetime:
        return datetime.fromtimestamp(self.open_time_ms / 1000, UTC)


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    # None: the exchange named no status (an answer without one).
    status: OrderStatus | None
    filled_quantity: Decimal
    reject_message: str


def bar_of(candle: common_pb2.Candle) -> Bar:
    return Bar(
        open_time_ms=candle.open_time.seconds * 1000 + candle.open_time.nanos // 1_000_000,
        open=float(candle.open),
        high=float(candle.high),
        low=float(candle.low),
        close=float(candle.close),
        volume=float(candle.volume or 0),
        close_decimal=Decimal(candle.close),
    )


def timestamp_ms(milliseconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp


class Exchange:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.stub: exchange_pb2_grpc.ExchangeServiceAsyncStub = (
            exchange_pb2_grpc.ExchangeServiceStub(channel)
        )
        self.timeout = timeout

    async def mode(self, venue: str) -> Mode | None:
        """The venue's kind (None: no such venue, or one that takes no orders)."""
        response = await self.stub.ListVenues(
            exchange_pb2.ListVenuesRequest(), timeout=self.timeout
        )
        for item in response.venues:
            if item.name == venue and not item.read_only:
                return _MODES.get(item.kind)
        return None

    async def market(self, venue: str, symbol: str) -> MarketRules | None:
        response = await self.stub.ListMarkets(
            exchange_pb2.ListMarketsRequest(venue=venue), timeout=self.timeout
        )
        for market in response.markets:
            if market.symbol == symbol:
                return MarketRules(
                    base=market.base,
                    quote=market.quote,
                    quantity_increment=Decimal(market.quantity_increment or "0"),
                    min_quantity=Decimal(market.min_quantity or "0"),
                    min_notional=Decimal(market.min_notional or "0"),
                    taker_fee=Decimal(market.taker_fee or "0"),
                    spot=market.type in (exchange_pb2.MARKET_TYPE_SPOT, 0),
                )
        return None

    async def free_balance(self, venue: str, asset: str) -> Decimal:
        response = await self.stub.GetBalances(
            exchange_pb2.GetBalancesRequest(venue=venue), timeout=self.timeout
        )
        for balance in response.balances:
            if balance.asset == asset:
                return Decimal(balance.free or "0")
        return ZERO

    async def history(self, venue: str, symbol: str, timeframe: str, limit: int) -> list[Bar]:
        """The newest `limit` closed candles, oldest first (the forming one left out)."""
        response = await self.stub.GetCandles(
            exchange_pb2.GetCandlesRequest(
                venue=venue,
                symbol=symbol,
                timeframe=timeframes.to_proto(timeframe),  # type: ignore[arg-type]
                limit=limit + 1,
            ),
            timeout=self.timeout,
        )
        bars = [bar_of(candle) for candle in response.candles]
        step = timeframes.FIXED_MS.get(timeframe)
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        if bars and step is not None and bars[-1].open_time_ms + step > now_ms:
            bars = bars[:-1]
        return bars[-limit:]

    def closed_candles(
        self, venue: str, symbol: str, timeframe: str, after_ms: int
    ) -> AsyncIterator[Bar]:
        """Each closed candle once, in order; first the closed ones after `after_ms`."""
        call = self.stub.StreamCandles(
            exchange_pb2.StreamCandlesRequest(
                venue=venue,
                symbol=symbol,
                timeframe=timeframes.to_proto(timeframe),  # type: ignore[arg-type]
                after=timestamp_ms(after_ms),
            )
        )
        return _bars(call)

    def tickers(self, venue: str, symbol: str) -> AsyncIterator[Decimal]:
        """The mark (last trade, else mid) of each ticker update."""
        call = self.stub.StreamTickers(
            exchange_pb2.StreamTickersRequest(venue=venue, symbols=[symbol])
        )
        return _marks(call)

    async def submit_market(
        self, venue: str, symbol: str, quantity: Decimal, client_order_id: str
    ) -> OrderResult:
        response = await self.stub.SubmitOrder(
            exchange_pb2.SubmitOrderRequest(
                venue=venue,
                symbol=symbol,
                side=common_pb2.SIDE_BUY if quantity > 0 else common_pb2.SIDE_SELL,
                type=common_pb2.ORDER_TYPE_MARKET,
                quantity=str(abs(quantity)),
                client_order_id=client_order_id,
            ),
            timeout=self.timeout,
        )
        return _result(response.order)

    async def order(self, venue: str, client_order_id: str) -> OrderResult | None:
        try:
            response = await self.stub.GetOrder(
                exchange_pb2.GetOrderRequest(venue=venue, client_order_id=client_order_id),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            # The order only: a venue the exchange does not know is no "never sent".
            if error.code() == grpc.StatusCode.NOT_FOUND and (
                reason_of(error) == ExchangeReason.ORDER_NOT_FOUND
            ):
                return None
            raise
        return _result(response.order)

    async def open_orders(self, venue: str, symbol: str, prefix: str) -> list[tuple[str, str]]:
        """(order_id, client_order_id) of the open orders whose client id has `prefix`."""
        found: list[tuple[str, str]] = []
        token = ""
        while True:
            response = await self.stub.ListOrders(
                exchange_pb2.ListOrdersRequest(
                    venue=venue, symbol=symbol, statuses=_OPEN_FILTER, page_token=token
                ),
                timeout=self.timeout,
            )
            found += [
                (order.order_id, order.client_order_id)
                for order in response.orders
                if order.client_order_id.startswith(prefix)
            ]
            token = response.next_page_token
            if not token:
                return found

    async def cancel(self, order_id: str) -> None:
        await self.stub.CancelOrder(
            exchange_pb2.CancelOrderRequest(order_id=order_id), timeout=self.timeout
        )

    def fills(self, after_seq: int) -> AsyncIterator[Fill | int]:
        """Runners' fills after `after_seq`; other executions as their sequence alone."""
        call = self.stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest(after_seq=after_seq))
        return _fills(call)


async def _bars(call: AsyncIterable[exchange_pb2.StreamCandlesResponse]) -> AsyncIterator[Bar]:
    async for message in call:
        yield bar_of(message.candle)


async def _marks(call: AsyncIterable[exchange_pb2.StreamTickersResponse]) -> AsyncIterator[Decimal]:
    async for message in call:
        ticker = message.ticker
        if ticker.last:
            yield Decimal(ticker.last)
        elif ticker.bid and ticker.ask:
            yield (Decimal(ticker.bid) + Decimal(ticker.ask)) / 2


async def _fills(
    call: AsyncIterable[exchange_pb2.StreamExecutionsResponse],
) -> AsyncIterator[Fill | int]:
    async for message in call:
        executions = list(message.executions) or [message.execution]
        for execution in executions:
            runner_id = runner_of(execution.client_order_id)
            if runner_id is None:
                yield execution.sequence
                continue
            quantity = Decimal(execution.quantity)
            yield Fill(
                sequence=execution.sequence,
                runner_id=runner_id,
                client_order_id=execution.client_order_id,
                quantity=quantity if execution.side == common_pb2.SIDE_BUY else -quantity,
                price=Decimal(execution.price),
                fee=Decimal(execution.fee or "0"),
                fee_currency=execution.fee_currency,
            )


def _result(order: common_pb2.Order) -> OrderResult:
    return OrderResult(
        order_id=order.order_id,
        status=_STATUSES.get(order.status),
        filled_quantity=Decimal(order.filled_quantity or "0"),
        reject_message=order.reject_message or ", ".join(order.reject_reasons),
    )


class Backtests:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.channel = channel
        self.timeout = timeout

    @cached_property
    def stub(self) -> backtest_pb2_grpc.BacktestServiceAsyncStub:
        # The backtest contract (~0.25 MiB with its descriptors) is loaded by the first
        # runner made from a backtest result, not by an idle service.
        from edgequant.backtest.v1 import backtest_pb2_grpc  # noqa: PLC0415

        return backtest_pb2_grpc.BacktestServiceStub(self.channel)

    async def strategy_of(self, job_id: str, run_index: int) -> tuple[str, dict[str, float]]:
        """The strategy and parameters of a backtest result."""
        from edgequant.backtest.v1 import backtest_pb2  # noqa: PLC0415 - see stub

        response = await self.stub.GetResult(
            backtest_pb2.GetResultRequest(job_id=job_id, run_index=run_index, page_size=1),
            timeout=self.timeout,
        )
        return response.strategy, dict(response.parameters)
