"""A bounded queue per stream subscriber; a subscriber that falls behind is dropped.

Dropping (rather than blocking the ledger, or silently losing updates) is what lets
a slow StreamPositions client never slow ingestion: its stream ends with ABORTED and
it resubscribes after reading the current state with ListPositions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from common.errors import Aborted

T = TypeVar("T")


class Subscription(Generic[T]):
    def __init__(self, capacity: int = 10_000) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=capacity)
        self._overflowed = False

    def offer(self, item: T) -> None:
        """Queues `item` without waiting; past capacity the subscription is dropped."""
        if self._overflowed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._overflowed = True

    async def items(self) -> AsyncIterator[T]:
        while True:
            if self._overflowed and self._queue.empty():
                raise Aborted(
                    "the stream fell behind and was dropped: read ListPositions, then resubscribe",
                    reason="STREAM_OVERFLOW",
                )
            yield await self._queue.get()
