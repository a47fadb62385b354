"""A page of a candle dataset's candles, read from its stored array without loading it.

Keyset paging on open_time: a page token holds the dataset id and the open time (ms) of
the last candle returned, and the next page starts after it (a binary search in the
memory-mapped time column), so a walk returns every candle once, a page costs the same
at the end of a large dataset as at its start, and an import or delete between pages
cannot shift it. numpy is imported by the read itself: an idle service does not hold it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from common.errors import FieldViolation, InvalidArgument
from services.backtest.datasets.store import DatasetNotFound, DatasetStore
from services.backtest.reasons import Reason

PAGE_KIND = "dataset_candles"
# A chart wants many candles at once; a page of 5,000 is ~0.8 MB of JSON.
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000

# (open time ms, open, high, low, close, volume), as stored: float64, the engines' form.
CandleRow = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class CandleQuery:
    """A checked request: `size` candles after `after_ms`, opening in [start_ms, end_ms)."""

    dataset_id: str
    size: int
    after_ms: int | None
    start_ms: int | None
    end_ms: int | None


@dataclass(frozen=True)
class CandlePage:
    rows: list[CandleRow]
    # The open time of the last row when more candles follow it, else None.
    last_ms: int | None


async def list_candles(store: DatasetStore, query: CandleQuery) -> CandlePage:
    """NOT_FOUND for an unknown dataset, INVALID_ARGUMENT on dataset_id for a tick one."""
    dataset = await store.get(query.dataset_id)
    if dataset.kind != "candles":
        raise InvalidArgument(
            [FieldViolation("dataset_id", f"{dataset.kind} dataset: only candle datasets")]
        )
    try:
        return await asyncio.to_thread(read_candles, store.file(dataset), query)
    except FileNotFoundError:  # deleted since it was looked up
        raise DatasetNotFound(
            f"no dataset {query.dataset_id[:40]!r}", reason=Reason.DATASET_NOT_FOUND
        ) from None


def read_candles(path: Path, query: CandleQuery) -> CandlePage:
    """One page of the (6, n) array at `path` (blocking: call it in a thread)."""
    import numpy as np  # noqa: PLC0415 - only a request that reads candles needs it

    columns = np.load(path, mmap_mode="r")
    times = columns[0]
    first = 0
    if query.start_ms is not None:
        first = int(np.searchsorted(times, query.start_ms, side="left"))
    if query.after_ms is not None:
        first = max(first, int(np.searchsorted(times, query.after_ms, side="right")))
    end = len(times)
    if query.end_ms is not None:
        end = int(np.searchsorted(times, query.end_ms, side="left"))
    last = min(first + query.size, end)
    rows = (
        [tuple(row) for row in np.array(columns[:, first:last]).T.tolist()] if last > first else []
    )
    more = last < end
    return CandlePage(rows, int(rows[-1][0]) if more else None)
