"""Fan-out of order changes to StreamOrderUpdates subscribers (common.fanout's rule).

A subscriber that falls a whole queue behind has its stream ended with ABORTED
STREAM_OVERFLOW (never a silent drop): it re-reads with ListOrders and subscribes again.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator, Callable

from common.fanout import DEFAULT_QUEUE_SIZE, Fanout
from services.exchange.orders import Order

# A batched message's first update waits this long for the ones after it. What an order
# publishes (PENDING_NEW once risk answered, then its fill) happens while its SubmitOrder
# is still to be answered: sent at once, those messages took the event loop before the
# reply (the round trip was ~30% longer). Gathered, the reply goes first and one message
# carries them all; each message costs the receiver (risk: ~0.3-0.5 ms of gRPC work)
# more than the updates in it. A subscriber sees an update at most this much later.
GATHER_SECONDS = 0.005


class OrderUpdates:
    def __init__(
        self,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.gather_seconds = gather_seconds
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
        async with self.fanout.subscribed(_on(venue)) as items:
            async for order in items:
                yield order

    async def follow_in_batches(
        self, max_batch: int, venue: str = ""
    ) -> AsyncGenerator[list[Order], None]:
        """As `follow`, in lists of up to `max_batch`: each list's first update waits out
        `gather_seconds` for the ones after it, unless the list is full already."""
        async with self.fanout.subscribed_in_batches(
            max_batch, _on(venue), self.gather_seconds
        ) as batches:
            async for batch in batches:
                yield batch


def _on(venue: str) -> Callable[[Order], bool]:
    return lambda order: not venue or order.venue == venue
