"""A broadcast wake-up: many waiters, each told that something changed since it last looked.

Waiters read the new state themselves (from the database or a venue), so a slow reader
never makes a queue grow and never misses a change: several changes coalesce into one.
The outbox (StreamExecutions resumes from a sequence) and tickers (the latest one is
what counts) use this rather than common.fanout: nothing is queued, so nothing can
overflow; order updates, each of which matters, go through a Fanout.
"""

from __future__ import annotations

import asyncio


class Wakeup:
    def __init__(self) -> None:
        self.version = 0
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, seen: int) -> int:
        """Returns the current version once it is past `seen`."""
        while self.version <= seen:
            await self._changed.wait()
        return self.version
