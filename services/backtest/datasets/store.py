"""Datasets as the service keeps them: their metadata (storage.datasets), an array file
beside it, and the chunked uploads being assembled."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Never

from common.errors import FieldViolation, InvalidArgument, NotFound
from common.validation import Violations
from services.backtest.datasets.dataset import Dataset
from services.backtest.datasets.importer import Imported, ImportJob, run_import
from services.backtest.datasets.problems import MalformedDataset
from services.backtest.reasons import Reason
from services.backtest.storage.datasets import DatasetRepository

CANDLE_FORMATS = ("csv", "freqtrade_json")
TICK_FORMATS = ("hftbacktest_npz", "binance_futures_raw")
CALENDARS = ("continuous", "trading_days")
# A chunked upload left unfinished this long is discarded (checked at each new upload).
UPLOAD_EXPIRY_SECONDS = 3600.0
# The largest file a chunked upload may assemble.
MAX_UPLOAD_BYTES = 4 * 1024**3
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


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
    calendar: str = "continuous"
    adjusted_close: bool = False
    # A finished chunked upload (see receive_chunk): the file to import.
    upload: Path | None = None


@dataclass(frozen=True)
class Chunk:
    # Empty for the first chunk of a new upload.
    upload_id: str
    offset: int
    content: bytes
    # False on the last chunk.
    more: bool


@dataclass(frozen=True)
class Received:
    upload_id: str
    size: int
    path: Path


class DatasetNotFound(NotFound):
    """No dataset with that id: see ListDatasets."""


class DatasetStore:
    def __init__(
        self,
        repository: DatasetRepository,
        directory: Path,
        import_dir: Path,
    ) -> None:
        self.repository = repository
        self.directory = directory
        self.import_dir = import_dir
        # Chunked uploads being assembled: <directory>/uploads/<upload id>.part
        self.uploads = directory / "uploads"
        self._upload_lock = asyncio.Lock()

    async def receive_chunk(self, chunk: Chunk) -> Received:
        """Appends a chunk to its upload (a new one when `upload_id` is empty).

        A chunk at an offset before the end replaces what followed it (a client
        resending after a lost answer); one past the end is refused, naming the offset
        expected. Each chunk is written before the answer, so a retry is safe."""
        async with self._upload_lock:
            return await asyncio.to_thread(self._append_chunk, chunk)

    def _append_chunk(self, chunk: Chunk) -> Received:
        self.uploads.mkdir(parents=True, exist_ok=True)
        if not chunk.upload_id:
            if chunk.offset != 0:
                _refuse("chunk_offset", "a new upload starts at offset 0")
            self._discard_stale_uploads()
            upload_id = uuid.uuid4().hex
            path = self.uploads / f"{upload_id}.part"
            path.write_bytes(b"")
        else:
            upload_id = chunk.upload_id
            path = self.uploads / f"{upload_id}.part"
            if not _UPLOAD_ID.match(upload_id) or not path.is_file():
                _refuse(
                    "upload_id",
                    f"no upload {upload_id[:40]!r} in progress (finished, or discarded "
                    "after an hour unfinished); start again without upload_id",
                )
        size = path.stat().st_size
        if not 0 <= chunk.offset <= size:
            _refuse("chunk_offset", f"expected at most {size}, got {chunk.offset}")
        if chunk.offset + len(chunk.content) > MAX_UPLOAD_BYTES:
            _refuse("content", f"an upload is at most {MAX_UPLOAD_BYTES} bytes")
        with path.open("r+b") as upload:
            upload.truncate(chunk.offset)
            upload.seek(chunk.offset)
            upload.write(chunk.content)
        return Received(upload_id, chunk.offset + len(chunk.content), path)

    def _discard_stale_uploads(self) -> None:
        cutoff = time.time() - UPLOAD_EXPIRY_SECONDS
        for stale in self.uploads.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if stale.stat().st_mtime < cutoff:
                    stale.unlink()

    async def import_dataset(self, request: ImportRequest) -> Dataset:
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
            adjusted_close=request.adjusted_close,
        )
        try:
            imported = await _in_child(job)
        except MalformedDataset as problem:
            destination.unlink(missing_ok=True)
            raise InvalidArgument(
                [FieldViolation(problem.field, problem.problem)], reason=Reason.MALFORMED_DATASET
            ) from None
        finally:
            if request.upload is not None:
                request.upload.unlink(missing_ok=True)
        dataset = _dataset(dataset_id, request, imported, destination.name)
        await self.repository.add(dataset)
        return dataset

    def _source(self, request: ImportRequest) -> tuple[str, Path | None]:
        """Which field the data came in, and the resolved path if it is a path."""
        violations = Violations()
        if request.upload is not None:
            if request.path:
                violations.add("path", "give no path with a chunked upload")
            elif request.upload.stat().st_size == 0:
                violations.add("content", "the upload is empty")
        elif bool(request.content) == bool(request.path):
            violations.add("content", "give either content or path")
        if request.calendar not in CALENDARS:
            violations.add("calendar", f"must be one of {', '.join(CALENDARS)}")
        if request.adjusted_close and request.source_format != "csv":
            violations.add("adjusted_close", "applies to CSV files only")
        if request.source_format in TICK_FORMATS and (
            request.tick_size <= 0 or request.lot_size <= 0
        ):
            for name in ("tick_size", "lot_size"):
                violations.require(
                    getattr(request, name) > 0,
                    name,
                    "tick datasets need a positive tick_size and lot_size",
                )
        resolved = None
        if request.path:
            resolved = (self.import_dir / request.path).resolve()
            if not resolved.is_relative_to(self.import_dir.resolve()):
                violations.add("path", f"must lie under {self.import_dir}")
            elif not resolved.is_file():
                violations.add("path", f"no file {request.path[:80]!r} under {self.import_dir}")
        violations.raise_if_any()
        if request.upload is not None:
            return "content", request.upload
        return ("path", resolved) if request.path else ("content", None)

    async def get(self, dataset_id: str) -> Dataset:
        dataset = await self.repository.get(dataset_id)
        if dataset is None:
            raise _not_found(dataset_id)
        return dataset

    def file(self, dataset: Dataset) -> Path:
        return self.directory / dataset.file_name

    async def page(self, offset: int, limit: int) -> list[Dataset]:
        return await self.repository.page(offset, limit)

    async def delete(self, dataset_id: str) -> None:
        dataset = await self.repository.delete(dataset_id)
        if dataset is None:
            raise _not_found(dataset_id)
        (self.directory / dataset.file_name).unlink(missing_ok=True)


def _not_found(dataset_id: str) -> DatasetNotFound:
    return DatasetNotFound(f"no dataset {dataset_id[:40]!r}", reason=Reason.DATASET_NOT_FOUND)


def _refuse(field: str, problem: str) -> Never:
    raise InvalidArgument([FieldViolation(field, problem)])


async def _in_child(job: ImportJob) -> Imported:
    """Runs the import in a fresh process (spawned: the server's threads are not forked)."""
    # multiprocessing and concurrent.futures.process are ~400 KiB of heap an idle server
    # never uses: the first dataset import loads them.
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return await loop.run_in_executor(pool, run_import, job)


def _dataset(
    dataset_id: str, request: ImportRequest, imported: Imported, file_name: str
) -> Dataset:
    return Dataset(
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
        gaps=tuple((after, resume, missing) for after, resume, missing in imported.gaps),
        tick_size=request.tick_size,
        lot_size=request.lot_size,
        calendar=request.calendar,
        file_name=file_name,
        create_time=datetime.now(UTC),
    )
