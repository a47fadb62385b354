"""The memory watchdog: a job's worker processes are checked for RSS every
MEMORY_CHECK_SECONDS, and the job is stopped when one passes the workers' budget (the
estimate at admission is only an estimate: a strategy may hold far more)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

from common.memory import rss_bytes

MEMORY_CHECK_SECONDS = 0.25


async def watch_memory(
    pids: Callable[[], Iterable[int]], budget_bytes: int, over_budget: Callable[[], None]
) -> None:
    """Until cancelled: calls `over_budget` whenever one of `pids()` (read afresh each
    time: processes end) holds more than `budget_bytes`."""
    while True:
        await asyncio.sleep(MEMORY_CHECK_SECONDS)
        for pid in pids():
            with contextlib.suppress(OSError):  # gone: its job notices
                if rss_bytes(pid) > budget_bytes:
                    over_budget()
                    break
