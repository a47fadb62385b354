"""ImportDataset's decisions: a chunk of an upload, candles fetched through the exchange
service, or a file (sent, or under the import directory) imported at once."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from common import timeframes
from common.validation import Violations
from services.backtest.datasets.dataset import Dataset
from services.backtest.datasets.store import Chunk, DatasetStore, ImportRequest

# (venue, symbol, timeframe name, start ms, end ms) -> a Freqtrade JSON document.
FetchCandles = Callable[[str, str, str, int, int], Awaitable[bytes]]
EXCHANGE = "exchange"


@dataclass(frozen=True)
class DatasetIntake:
    """What an ImportDataset request asks for, in domain terms."""

    name: str
    # A dataset format ("csv", ...), "exchange" (fetched candles), or "" (none given).
    source_format: str
    content: bytes
    path: str
    symbol: str
    timeframe: str | None  # None: inferred from the file
    tick_size: float
    lot_size: float
    calendar: str
    adjusted_close: bool
    upload_id: str = ""
    chunk_offset: int = 0
    more_chunks: bool = False
    venue: str = ""
    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def chunked(self) -> bool:
        return bool(self.upload_id or self.more_chunks)


@dataclass(frozen=True)
class Taken:
    """The imported dataset, or None while an upload's chunks are still coming."""

    dataset: Dataset | None
    upload_id: str = ""
    received_bytes: int = 0


class DatasetIntakes:
    def __init__(self, store: DatasetStore, fetch_candles: FetchCandles) -> None:
        self.store = store
        self.fetch_candles = fetch_candles

    async def take(self, intake: DatasetIntake) -> Taken:
        upload, upload_id, upload_size = None, "", 0
        if intake.chunked:
            problems = Violations()
            problems.require(
                intake.source_format != EXCHANGE and not intake.path,
                "upload_id",
                "chunks carry file content, not a path",
            )
            problems.raise_if_any()
            received = await self.store.receive_chunk(
                Chunk(intake.upload_id, intake.chunk_offset, intake.content, intake.more_chunks)
            )
            if intake.more_chunks:
                return Taken(None, received.upload_id, received.size)
            upload, upload_id, upload_size = received.path, intake.upload_id, received.size
        content, source_format = intake.content, intake.source_format
        if source_format == EXCHANGE:
            content, source_format = await self._fetch(intake), "freqtrade_json"
        elif not source_format:
            # A chunked upload stays: the last chunk can be sent again, completed.
            problems = Violations()
            problems.add("format", "choose a dataset format")
            problems.raise_if_any()
        dataset = await self.store.import_dataset(
            ImportRequest(
                name=intake.name,
                source_format=source_format,
                content=b"" if upload is not None else content,
                path=intake.path,
                symbol=intake.symbol,
                timeframe=intake.timeframe,
                tick_size=intake.tick_size,
                lot_size=intake.lot_size,
                calendar=intake.calendar,
                adjusted_close=intake.adjusted_close,
                upload=upload,
            )
        )
        return Taken(dataset, upload_id, upload_size)

    async def _fetch(self, intake: DatasetIntake) -> bytes:
        problems = Violations()
        for name, given in (
            ("venue", intake.venue),
            ("symbol", intake.symbol),
            ("timeframe", intake.timeframe),
            ("start_time", intake.start_ms is not None),
        ):
            problems.require(
                bool(given), name, "is required to fetch candles through the exchange service"
            )
        problems.require(
            intake.timeframe != timeframes.MONTH,
            "timeframe",
            "the exchange service has no monthly candles; import a file of them",
        )
        problems.require(
            not intake.content and not intake.path,
            "content",
            "give no content or path with EXCHANGE",
        )
        problems.raise_if_any()
        assert intake.timeframe is not None
        assert intake.start_ms is not None
        end_ms = intake.end_ms if intake.end_ms is not None else time.time_ns() // 1_000_000
        return await self.fetch_candles(
            intake.venue, intake.symbol, intake.timeframe, intake.start_ms, end_ms
        )
