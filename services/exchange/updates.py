"""Fan-out of order changes to StreamOrderUpdates subscribers.

Each subscriber has a bounded queue; one that falls that far behind is dropped (its
stream ends with ABORTED) rather than slow the order flow down or grow without bound.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator

from common.errors import Aborted
from services.exchange.orders import Order

QUEUE_SIZE = 1024


class OrderUpdates:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Order | None]] = set()

    def publish(self, order: Order) -> None:
        snapshot = copy.copy(order)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(snapshot)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)

    async def follow(self, venue: str = "") -> AsyncIterator[Order]:
        queue: asyncio.Queue[Order | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            while True:
                order = await queue.get()
                if order is None:
                    raise Aborted(
                        "this order-updates stream fell behind and was dropped; "
                        "re-read with ListOrders and subscribe again",
                        reason="STREAM_OVERFLOW",
                    )
                if not venue or order.venue == venue:
                    yield order
        finally:
            self._subscribers.discard(queue)
