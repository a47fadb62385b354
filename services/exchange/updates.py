"""Fan-out of order changes to StreamOrderUpdates subscribers (common.fanout's rule).

A subscriber that falls a whole queue behind has its stream ended with ABORTED
STREAM_OVERFLOW (never a silent drop): it re-reads with ListOrders and subscribes again.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncGenerator, Callable

from common.fanout import DEFAULT_QUEUE_SIZE, Fanout
from services.exchange.orders import Order

# A batching subscriber that is caught up gets at most one message per this many
# seconds: what arrives meanwhile waits and goes in the next, larger message. Each message
# costs the receiver (risk: ~0.3-0.5 ms of gRPC work) more than the updates in it; under
# an order load most messages held one order's updates. A quiet stream is not delayed:
# the first update after a pause goes at once.
BATCH_INTERVAL_SECONDS = 0.005


class OrderUpdates:
    def __init__(
        self,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        batch_interval_seconds: float = BATCH_INTERVAL_SECONDS,
    ) -> None:
        self.batch_interval_seconds = batch_interval_seconds
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
        """As `follow`, in lists of what was waiting, up to `max_batch` each; once caught
        up, the next list waits out `batch_interval_seconds` after the last."""
        async with self.fanout.subscribed_in_batches(max_batch, _on(venue)) as batches:
            async for batch in batches:
                yield batch
                # Caught up (a partial batch): whatever is published meanwhile waits and
                # goes in the next one. A full batch means more is waiting: no pause, so
                # pacing never makes a subscriber fall behind (and be cut).
                if len(batch) < max_batch:
                    await asyncio.sleep(self.batch_interval_seconds)


def _on(venue: str) -> Callable[[Order], bool]:
    return lambda order: not venue or order.venue == venue
