"""Equity snapshots: taken on a timer, read back downsampled.

Every `snapshot_seconds` each account is marked to market (valuation.value_book) and
its equity, cash and net transfers appended to `equity_snapshots`. That series is what the equity
history and the performance figures are computed from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from services.portfolio.accounts import EquityPoint
from services.portfolio.ledger import Ledger
from services.portfolio.marks import MarkBook
from services.portfolio.storage.repository import PortfolioRepository
from services.portfolio.valuation import value_book

log = logging.getLogger("edgequant.portfolio.equity")


class EquityRecorder:
    def __init__(
        self,
        repository: PortfolioRepository,
        ledger: Ledger,
        marks: MarkBook,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._repository = repository
        self._ledger = ledger
        self._marks = marks
        self._clock = clock

    async def snapshot(self) -> int:
        """Appends one snapshot per account; returns how many."""
        now = self._clock()
        points = []
        for account_id, book in list(self._ledger.books.items()):
            value = value_book(book, self._marks)
            points.append(
                (account_id, EquityPoint(now, value.equity, value.cash, book.net_transfers))
            )
        await self._repository.add_equity_points(points)
        return len(points)

    async def run(self, every_seconds: float) -> None:
        """A snapshot every `every_seconds` (a timer, not a peer: no reconnect)."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.snapshot()
            except Exception:
                log.exception("equity snapshot failed; the next one is in %s s", every_seconds)


def downsample(points: Sequence[EquityPoint], interval: timedelta) -> list[EquityPoint]:
    """The last point of each interval (bucketed from the epoch, in UTC), oldest first."""
    if interval <= timedelta(0):
        return list(points)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    buckets: dict[int, EquityPoint] = {}
    for point in points:
        buckets[(point.time - epoch) // interval] = point
    return list(buckets.values())
