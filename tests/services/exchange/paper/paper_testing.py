"""What the paper venue's tests share: an order as the order flow hands it to a venue."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from services.exchange.orders import Order, OrderStatus, OrderType, Side, TimeInForce


def paper_order(
    order_id: str,
    side: Side,
    quantity: str | Decimal,
    price: str | Decimal | None = None,
    *,
    symbol: str = "BTC/USDT",
    venue: str = "paper",
    **extra: object,
) -> Order:
    """A new order (PENDING_NEW, the client id = `order_id`): a limit GTC with a price, a
    market IOC without; `extra` sets any other field (post_only, time_in_force, ...)."""
    now = datetime.now(UTC)
    order = Order(
        order_id=order_id,
        client_order_id=order_id,
        venue=venue,
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT if price else OrderType.MARKET,
        time_in_force=TimeInForce.GTC if price else TimeInForce.IOC,
        quantity=Decimal(quantity),
        price=Decimal(price) if price else None,
        post_only=False,
        reduce_only=False,
        status=OrderStatus.PENDING_NEW,
        create_time=now,
        update_time=now,
    )
    return replace(order, **extra)  # type: ignore[arg-type]
