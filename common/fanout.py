"""Fan-out of one producer's items to many stream subscribers: one rule for every stream.

`publish` never blocks and never awaits, so a hot path (an order, a risk check) can
publish. Each subscriber has a bounded queue; one that falls that far behind is cut:
its stream ends with ABORTED, reason STREAM_OVERFLOW, after the items it already
holds. Nothing is ever dropped silently: the subscriber knows it missed items,
re-reads the current state with the List RPC its error message names, and
subscribes again.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from common.errors import Aborted
from common.reasons import CommonReason

T = TypeVar("T")
log = logging.getLogger("edgequant.fanout")

DEFAULT_QUEUE_SIZE = 1024
# Every fan-out of the process, for its metrics (common.metrics reads them at a scrape).
_LIVE: weakref.WeakSet[Fanout[Any]] = weakref.WeakSet()


def live_fanouts() -> list[Fanout[Any]]:
    return list(_LIVE)


class _Cut:
    """Queued after a subscriber's last item when it overflowed."""


_CUT = _Cut()


class Fanout(Generic[T]):
    """`publish(item)` to every current subscriber of `subscribed()`.

    `what` names the stream and `resync` says how to catch up; both go into the
    STREAM_OVERFLOW error a cut subscriber receives.
    """

    def __init__(self, what: str, resync: str, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.what = what
        self.resync = resync
        self.queue_size = queue_size
        # Subscribers cut for falling behind, since the start.
        self.cuts = 0
        self._queues: set[asyncio.Queue[T | _Cut]] = set()
        _LIVE.add(self)

    @property
    def subscriber_count(self) -> int:
        return len(self._queues)

    def publish(self, item: T) -> None:
        for queue in list(self._queues):
            if queue.qsize() >= self.queue_size:
                self._cut(queue)
            else:
                queue.put_nowait(item)

    def subscribed(self, accept: Callable[[T], bool] | None = None) -> _Subscription[T]:
        """A context manager registered on entry (so nothing published after it is missed),
        yielding the subscriber's items (those `accept` takes)."""
        return _Subscription(self, accept)

    def subscribed_in_batches(
        self,
        max_batch: int,
        accept: Callable[[T], bool] | None = None,
        gather_seconds: float = 0.0,
    ) -> _BatchSubscription[T]:
        """As `subscribed`, yielding lists instead: up to `max_batch` items, oldest first.
        A list's first item waits `gather_seconds` for the ones published after it (0: a
        batch is what was waiting, and a batch of one goes at once); a full list never
        waits."""
        return _BatchSubscription(self, accept, max_batch, gather_seconds)

    def _register(self) -> asyncio.Queue[T | _Cut]:
        # One slot more than the limit, for the cut marker.
        queue: asyncio.Queue[T | _Cut] = asyncio.Queue(self.queue_size + 1)
        self._queues.add(queue)
        return queue

    def _unregister(self, queue: asyncio.Queue[T | _Cut]) -> None:
        self._queues.discard(queue)

    def _cut(self, queue: asyncio.Queue[T | _Cut]) -> None:
        self._queues.discard(queue)
        self.cuts += 1
        queue.put_nowait(_CUT)
        log.warning("stream subscriber fell behind and was cut", extra={"stream": self.what})


class _Registration(Generic[T]):
    """A subscriber's queue, registered from entry to exit of its `async with`."""

    def __init__(self, fanout: Fanout[T], accept: Callable[[T], bool] | None) -> None:
        self._fanout = fanout
        self._accept = accept
        self._queue: asyncio.Queue[T | _Cut] | None = None

    def _register(self) -> asyncio.Queue[T | _Cut]:
        self._queue = self._fanout._register()
        return self._queue

    async def __aexit__(self, *_exc: object) -> None:
        if self._queue is not None:
            self._fanout._unregister(self._queue)

    def _wanted(self, item: T) -> bool:
        return self._accept is None or self._accept(item)

    def _overflow(self) -> Aborted:
        return Aborted(
            f"this {self._fanout.what} stream fell behind and was cut: "
            f"{self._fanout.resync}, then subscribe again",
            reason=CommonReason.STREAM_OVERFLOW,
        )


class _Subscription(_Registration[T]):
    async def __aenter__(self) -> AsyncIterator[T]:
        return self._items(self._register())

    async def _items(self, queue: asyncio.Queue[T | _Cut]) -> AsyncIterator[T]:
        while True:
            item = await queue.get()
            if isinstance(item, _Cut):
                raise self._overflow()
            if self._wanted(item):
                yield item


class _BatchSubscription(_Registration[T]):
    def __init__(
        self,
        fanout: Fanout[T],
        accept: Callable[[T], bool] | None,
        max_batch: int,
        gather_seconds: float,
    ) -> None:
        super().__init__(fanout, accept)
        self._max_batch = max_batch
        self._gather_seconds = gather_seconds

    async def __aenter__(self) -> AsyncIterator[list[T]]:
        return self._batches(self._register())

    async def _batches(self, queue: asyncio.Queue[T | _Cut]) -> AsyncIterator[list[T]]:
        while True:
            waiting = [await queue.get()]
            if self._gather_seconds and queue.qsize() + 1 < self._max_batch:
                await asyncio.sleep(self._gather_seconds)
            while len(waiting) < self._max_batch and not queue.empty():
                waiting.append(queue.get_nowait())
            batch: list[T] = []
            for item in waiting:
                if isinstance(item, _Cut):  # always the last: its queue was dropped
                    if batch:
                        yield batch
                    raise self._overflow()
                if self._wanted(item):
                    batch.append(item)
            if batch:
                yield batch
