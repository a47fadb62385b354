"""Equity snapshots: taken on a timer, read back downsampled.

Every `snapshot_seconds` each account is marked to market (valuation.value_book) and
its equity, cash and net transfers appended to `equity_snapshots`. That series is what the equity
history and the performance figures are computed from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.portfolio.ledger import Ledger
from services.portfolio.marks import MarkBook
from services.portfolio.storage.models import EquitySnapshotRow
from services.portfolio.valuation import value_book

log = logging.getLogger("edgequant.portfolio.equity")


@dataclass(frozen=True, slots=True)
class EquityPoint:
    time: datetime
    equity: Decimal
    cash: Decimal
    # The account's net transfers (deposits minus withdrawals) at that time.
    net_transfers: Decimal = Decimal(0)


class EquityRecorder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        marks: MarkBook,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._ledger = ledger
        self._marks = marks
        self._clock = clock

    async def snapshot(self) -> int:
        """Appends one snapshot per account; returns how many."""
        now = self._clock()
        rows = []
        for account_id, book in list(self._ledger.books.items()):
            value = value_book(book, self._marks)
            rows.append(
                {
                    "account_id": account_id,
                    "time": now,
                    "equity": value.equity,
                    "cash": value.cash,
                    "net_transfers": book.net_transfers,
                }
            )
        if rows:
            async with self._sessions.begin() as session:
                await session.execute(insert(EquitySnapshotRow), rows)
        return len(rows)

    async def run(self, every_seconds: float) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.snapshot()
            except Exception:
                log.exception("equity snapshot failed; the next one is in %s s", every_seconds)


async def equity_points(
    session: AsyncSession,
    account_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[EquityPoint]:
    """Snapshots of an account, oldest first, within [start, end)."""
    query = select(EquitySnapshotRow).where(EquitySnapshotRow.account_id == account_id)
    if start is not None:
        query = query.where(EquitySnapshotRow.time >= start)
    if end is not None:
        query = query.where(EquitySnapshotRow.time < end)
    rows = await session.scalars(query.order_by(EquitySnapshotRow.time, EquitySnapshotRow.id))
    return [EquityPoint(row.time, row.equity, row.cash, row.net_transfers) for row in rows]


def downsample(points: Sequence[EquityPoint], interval: timedelta) -> list[EquityPoint]:
    """The last point of each interval (bucketed from the epoch, in UTC), oldest first."""
    if interval <= timedelta(0):
        return list(points)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    buckets: dict[int, EquityPoint] = {}
    for point in points:
        buckets[(point.time - epoch) // interval] = point
    return list(buckets.values())
