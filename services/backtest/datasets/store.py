"""Datasets as the service keeps them: a row of metadata, an array file beside it."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.errors import FieldViolation, InvalidArgument, NotFound
from services.backtest.datasets.candles import MalformedDataset
from services.backtest.datasets.importer import Imported, ImportJob, run_import
from services.backtest.storage.models import DatasetRow

CANDLE_FORMATS = ("csv", "freqtrade_json")
TICK_FORMATS = ("hftbacktest_npz", "binance_futures_raw")


@dataclass(frozen=True)
class ImportRequest:
    name: str
    source_format: str
    content: bytes
    path: str
    symbol: str
    timeframe: str | None
    tick_size: float
    lot_size: float


class DatasetNotFound(NotFound):
    """No dataset with that id: see ListDatasets."""


class DatasetStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: Path,
        import_dir: Path,
    ) -> None:
        self.sessions = sessions
        self.directory = directory
        self.import_dir = import_dir

    async def import_dataset(self, request: ImportRequest) -> DatasetRow:
        field, source_path = self._source(request)
        dataset_id = str(uuid.uuid4())
        suffix = ".npy" if request.source_format in CANDLE_FORMATS else ".npz"
        destination = self.directory / f"{dataset_id}{suffix}"
        job = ImportJob(
            source_format=request.source_format,
            content=request.content,
            source_path=str(source_path or ""),
            field=field,
            timeframe=request.timeframe,
            destination=str(destination),
        )
        try:
            imported = await _in_child(job)
        except MalformedDataset as problem:
            destination.unlink(missing_ok=True)
            raise InvalidArgument(
                [FieldViolation(problem.field, problem.problem)], reason="MALFORMED_DATASET"
            ) from None
        row = _row(dataset_id, request, imported, destination.name)
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    def _source(self, request: ImportRequest) -> tuple[str, Path | None]:
        """Which field the data came in, and the resolved path if it is a path."""
        violations = []
        if bool(request.content) == bool(request.path):
            violations.append(FieldViolation("content", "give either content or path"))
        if request.source_format in TICK_FORMATS and (
            request.tick_size <= 0 or request.lot_size <= 0
        ):
            violations += [
                FieldViolation(name, "tick datasets need a positive tick_size and lot_size")
                for name in ("tick_size", "lot_size")
                if getattr(request, name) <= 0
            ]
        resolved = None
        if request.path:
            resolved = (self.import_dir / request.path).resolve()
            if not resolved.is_relative_to(self.import_dir.resolve()):
                violations.append(FieldViolation("path", f"must lie under {self.import_dir}"))
            elif not resolved.is_file():
                violations.append(
                    FieldViolation("path", f"no file {request.path!r} under {self.import_dir}")
                )
        if violations:
            raise InvalidArgument(violations)
        return ("path", resolved) if request.path else ("content", None)

    async def get(self, dataset_id: str) -> DatasetRow:
        async with self.sessions() as session:
            row = await session.get(DatasetRow, dataset_id)
        if row is None:
            raise DatasetNotFound(f"no dataset {dataset_id!r}", reason="DATASET_NOT_FOUND")
        return row

    def file(self, row: DatasetRow) -> Path:
        return self.directory / row.file_name

    async def page(self, offset: int, limit: int) -> list[DatasetRow]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(DatasetRow)
                .order_by(DatasetRow.create_time, DatasetRow.dataset_id)
                .offset(offset)
                .limit(limit)
            )
            return list(rows)

    async def delete(self, dataset_id: str) -> None:
        async with self.sessions.begin() as session:
            row = await session.get(DatasetRow, dataset_id)
            if row is None:
                raise DatasetNotFound(f"no dataset {dataset_id!r}", reason="DATASET_NOT_FOUND")
            await session.delete(row)
        (self.directory / row.file_name).unlink(missing_ok=True)


async def _in_child(job: ImportJob) -> Imported:
    """Runs the import in a fresh process (spawned: the server's threads are not forked)."""
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return await loop.run_in_executor(pool, run_import, job)


def _row(dataset_id: str, request: ImportRequest, imported: Imported, file_name: str) -> DatasetRow:
    return DatasetRow(
        dataset_id=dataset_id,
        name=request.name or dataset_id,
        kind=imported.kind,
        source_format=request.source_format,
        symbol=request.symbol,
        timeframe=imported.timeframe,
        rows=imported.rows,
        start_ms=imported.start_ms,
        end_ms=imported.end_ms,
        size_bytes=imported.size_bytes,
        gaps=imported.gaps,
        tick_size=request.tick_size,
        lot_size=request.lot_size,
        file_name=file_name,
        create_time=datetime.now(UTC),
    )
