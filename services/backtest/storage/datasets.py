"""The datasets table: Dataset objects in, Dataset objects out (no row leaves this module)."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.backtest.datasets.dataset import Dataset
from services.backtest.storage.models import DatasetRow


class DatasetRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, dataset: Dataset) -> None:
        async with self._sessions.begin() as session:
            session.add(_row(dataset))

    async def get(self, dataset_id: str) -> Dataset | None:
        async with self._sessions() as session:
            row = await session.get(DatasetRow, dataset_id)
            return None if row is None else _dataset(row)

    async def page(self, offset: int, limit: int) -> list[Dataset]:
        """Oldest first (ties by id), `limit` of them after the first `offset`."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DatasetRow)
                .order_by(DatasetRow.create_time, DatasetRow.dataset_id)
                .offset(offset)
                .limit(limit)
            )
            return [_dataset(row) for row in rows]

    async def delete(self, dataset_id: str) -> Dataset | None:
        """Deletes the dataset's row; the dataset it was, or None if there was none."""
        async with self._sessions.begin() as session:
            row = await session.get(DatasetRow, dataset_id)
            if row is None:
                return None
            await session.delete(row)
            return _dataset(row)


def _row(dataset: Dataset) -> DatasetRow:
    return DatasetRow(
        dataset_id=dataset.dataset_id,
        name=dataset.name,
        kind=dataset.kind,
        source_format=dataset.source_format,
        symbol=dataset.symbol,
        timeframe=dataset.timeframe,
        rows=dataset.rows,
        start_ms=dataset.start_ms,
        end_ms=dataset.end_ms,
        size_bytes=dataset.size_bytes,
        gaps=[list(gap) for gap in dataset.gaps],
        tick_size=dataset.tick_size,
        lot_size=dataset.lot_size,
        calendar=dataset.calendar,
        file_name=dataset.file_name,
        create_time=dataset.create_time,
    )


def _dataset(row: DatasetRow) -> Dataset:
    return Dataset(
        dataset_id=row.dataset_id,
        name=row.name,
        kind=row.kind,
        source_format=row.source_format,
        symbol=row.symbol,
        timeframe=row.timeframe,
        rows=row.rows,
        start_ms=row.start_ms,
        end_ms=row.end_ms,
        size_bytes=row.size_bytes,
        gaps=tuple((int(a), int(r), int(m)) for a, r, m in row.gaps),
        tick_size=row.tick_size,
        lot_size=row.lot_size,
        calendar=row.calendar,
        file_name=row.file_name,
        # SQLite keeps no zone; the column is declared UTC.
        create_time=row.create_time
        if row.create_time.tzinfo
        else row.create_time.replace(tzinfo=UTC),
    )
