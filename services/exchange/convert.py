"""Domain objects <-> protobuf messages of the exchange contract."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp

from common.wire import decimal_text, timestamp
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from services.exchange.markets import (
    Balance,
    BookSnapshot,
    Candle,
    Market,
    Ticker,
    VenueInfo,
    VenueKind,
)
from services.exchange.orders import (
    Execution,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

if TYPE_CHECKING:
    from services.exchange.candle_stream import ClosedCandle

SIDES = {Side.BUY: common_pb2.SIDE_BUY, Side.SELL: common_pb2.SIDE_SELL}
TYPES = {
    OrderType.MARKET: common_pb2.ORDER_TYPE_MARKET,
    OrderType.LIMIT: common_pb2.ORDER_TYPE_LIMIT,
}
TIFS = {
    TimeInForce.GTC: common_pb2.TIME_IN_FORCE_GTC,
    TimeInForce.IOC: common_pb2.TIME_IN_FORCE_IOC,
    TimeInForce.FOK: common_pb2.TIME_IN_FORCE_FOK,
}
STATUSES = {
    OrderStatus.PENDING_NEW: common_pb2.ORDER_STATUS_PENDING_NEW,
    OrderStatus.OPEN: common_pb2.ORDER_STATUS_OPEN,
    OrderStatus.PARTIALLY_FILLED: common_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    OrderStatus.FILLED: common_pb2.ORDER_STATUS_FILLED,
    OrderStatus.PENDING_CANCEL: common_pb2.ORDER_STATUS_PENDING_CANCEL,
    OrderStatus.CANCELED: common_pb2.ORDER_STATUS_CANCELED,
    OrderStatus.REJECTED: common_pb2.ORDER_STATUS_REJECTED,
    OrderStatus.EXPIRED: common_pb2.ORDER_STATUS_EXPIRED,
}
STATUS_OF = {value: key for key, value in STATUSES.items()}
LIQUIDITY = {
    Liquidity.MAKER: common_pb2.LIQUIDITY_MAKER,
    Liquidity.TAKER: common_pb2.LIQUIDITY_TAKER,
}
KINDS = {
    VenueKind.PAPER: exchange_pb2.VENUE_KIND_PAPER,
    VenueKind.SANDBOX: exchange_pb2.VENUE_KIND_SANDBOX,
    VenueKind.LIVE: exchange_pb2.VENUE_KIND_LIVE,
}
MARKET_TYPES = {
    "spot": exchange_pb2.MARKET_TYPE_SPOT,
    "swap": exchange_pb2.MARKET_TYPE_SWAP,
    "future": exchange_pb2.MARKET_TYPE_FUTURE,
}


def order(o: Order) -> common_pb2.Order:
    return common_pb2.Order(
        order_id=o.order_id,
        client_order_id=o.client_order_id,
        venue_order_id=o.venue_order_id,
        venue=o.venue,
        symbol=o.symbol,
        side=SIDES[o.side],
        type=TYPES[o.type],
        time_in_force=TIFS[o.time_in_force],
        quantity=decimal_text(o.quantity),
        price=decimal_text(o.price),
        post_only=o.post_only,
        reduce_only=o.reduce_only,
        status=STATUSES[o.status],
        filled_quantity=decimal_text(o.filled_quantity),
        average_fill_price=decimal_text(o.average_fill_price),
        fee=decimal_text(o.fee),
        fee_currency=o.fee_currency,
        reject_reasons=o.reject_reasons,
        reject_message=o.reject_message,
        create_time=timestamp(o.create_time),
        update_time=timestamp(o.update_time),
    )


def execution(e: Execution) -> common_pb2.Execution:
    return common_pb2.Execution(
        sequence=e.sequence,
        venue=e.venue,
        trade_id=e.trade_id,
        order_id=e.order_id,
        client_order_id=e.client_order_id,
        symbol=e.symbol,
        side=SIDES[e.side],
        quantity=decimal_text(e.quantity),
        price=decimal_text(e.price),
        fee=decimal_text(e.fee),
        fee_currency=e.fee_currency,
        liquidity=LIQUIDITY[e.liquidity],
        time=timestamp(e.time),
    )


def venue(
    v: VenueInfo, starting_balances: Iterable[Balance] = (), *, read_only: bool = False
) -> exchange_pb2.Venue:
    return exchange_pb2.Venue(
        name=v.name,
        kind=KINDS[v.kind],
        exchange_id=v.exchange_id,
        available=v.available,
        starting_balances=[balance(b) for b in starting_balances],
        read_only=read_only,
    )


def market(m: Market) -> exchange_pb2.Market:
    return exchange_pb2.Market(
        symbol=m.symbol,
        base=m.base,
        quote=m.quote,
        type=MARKET_TYPES.get(m.type, exchange_pb2.MARKET_TYPE_UNSPECIFIED),
        active=m.active,
        price_increment=decimal_text(m.price_increment),
        quantity_increment=decimal_text(m.quantity_increment),
        min_quantity=decimal_text(m.min_quantity),
        max_quantity=decimal_text(m.max_quantity),
        min_notional=decimal_text(m.min_notional),
        maker_fee=decimal_text(m.maker_fee),
        taker_fee=decimal_text(m.taker_fee),
    )


def ticker(venue_name: str, t: Ticker) -> exchange_pb2.Ticker:
    return exchange_pb2.Ticker(
        venue=venue_name,
        symbol=t.symbol,
        bid=decimal_text(t.bid),
        bid_size=decimal_text(t.bid_size),
        ask=decimal_text(t.ask),
        ask_size=decimal_text(t.ask_size),
        last=decimal_text(t.last),
        high=decimal_text(t.high),
        low=decimal_text(t.low),
        base_volume=decimal_text(t.base_volume),
        quote_volume=decimal_text(t.quote_volume),
        time=timestamp(t.time),
    )


def order_book(venue_name: str, book: BookSnapshot) -> exchange_pb2.OrderBook:
    return exchange_pb2.OrderBook(
        venue=venue_name,
        symbol=book.symbol,
        bids=[
            exchange_pb2.PriceLevel(price=decimal_text(p), quantity=decimal_text(q))
            for p, q in book.bids
        ],
        asks=[
            exchange_pb2.PriceLevel(price=decimal_text(p), quantity=decimal_text(q))
            for p, q in book.asks
        ],
        time=timestamp(book.time),
    )


def candle(c: Candle) -> common_pb2.Candle:
    stamp = Timestamp()
    stamp.FromMilliseconds(c.open_time_ms)
    return common_pb2.Candle(
        open_time=stamp,
        open=decimal_text(c.open),
        high=decimal_text(c.high),
        low=decimal_text(c.low),
        close=decimal_text(c.close),
        volume=decimal_text(c.volume),
    )


def balance(b: Balance) -> common_pb2.Balance:
    return common_pb2.Balance(
        asset=b.asset,
        free=decimal_text(b.free),
        locked=decimal_text(b.locked),
        total=decimal_text(b.total),
    )


def closed_candle(closed: ClosedCandle) -> exchange_pb2.StreamCandlesResponse:
    close_time, emitted_time = Timestamp(), Timestamp()
    close_time.FromMilliseconds(closed.close_ms)
    emitted_time.FromMilliseconds(closed.emitted_ms)
    return exchange_pb2.StreamCandlesResponse(
        candle=candle(closed.candle),
        close_time=close_time,
        emitted_time=emitted_time,
        catch_up=closed.catch_up,
        late=closed.late,
    )
