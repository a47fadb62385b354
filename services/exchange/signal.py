"""A broadcast wake-up: many waiters, each told that something changed since it last looked.

Waiters read the new state themselves (from the database or a venue), so a slow reader
never makes a queue grow and never misses a change: several changes coalesce into one.
"""

from __future__ import annotations

import asyncio


class Signal:
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
