"""Fan-out of order changes to StreamOrderUpdates subscribers (common.fanout's rule).

A subscriber that falls a whole queue behind has its stream ended with ABORTED
STREAM_OVERFLOW (never a silent drop): it re-reads with ListOrders and subscribes again.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator

from common.fanout import DEFAULT_QUEUE_SIZE, Fanout
from services.exchange.orders import Order


class OrderUpdates:
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.fanout: Fanout[Order] = Fanout(
            "order-updates", "re-read the orders with ListOrders", queue_size
        )

    @property
    def subscriber_count(self) -> int:
        return self.fanout.subscriber_count

    def publish(self, order: Order) -> None:
        # A snapshot: the order flow keeps changing its own object.
        self.fanout.publish(copy.copy(order))

    async def follow(self, venue: str = "") -> AsyncGenerator[Order, None]:
        """Every order change from now on (on `venue`, or on every venue when empty)."""
        async with self.fanout.subscribed(lambda order: not venue or order.venue == venue) as items:
            async for order in items:
                yield order
