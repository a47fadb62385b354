"""A page of a candle dataset's candles, read from its stored array without loading it.

Keyset paging on open_time: a page token holds the dataset id and the open time (ms) of
the last candle returned, and the next page starts after it (a binary search in the
memory-mapped time column), so a walk returns every candle once, a page costs the same
at the end of a large dataset as at its start, and an import or delete between pages
cannot shift it. Candles are stored as float64 (the engines' form); their decimal
strings are the shortest text that reads back as the stored number ("0.1", not
"0.1000000000000000055...").
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from common.errors import FieldViolation, InvalidArgument
from common.paging import Page, page_token, read_page
from common.validation import Violations
from common.wire import decimal_text
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.common.v1 import common_pb2
from services.backtest.datasets.store import DatasetNotFound, DatasetStore

PAGE_KIND = "dataset_candles"
# A chart wants many candles at once; a page of 5,000 is ~0.8 MB of JSON.
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000


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
    candles: list[common_pb2.Candle]
    next_page_token: str


async def list_candles(store: DatasetStore, request: pb.ListDatasetCandlesRequest) -> CandlePage:
    """ListDatasetCandles: INVALID_ARGUMENT for bad paging or times, NOT_FOUND for an
    unknown dataset, INVALID_ARGUMENT on dataset_id for a tick dataset."""
    query = read_query(
        request.dataset_id,
        request.page_size,
        request.page_token,
        request.start_time if request.HasField("start_time") else None,
        request.end_time if request.HasField("end_time") else None,
    )
    row = await store.get(query.dataset_id)
    if row.kind != "candles":
        raise InvalidArgument(
            [FieldViolation("dataset_id", f"{row.kind} dataset: only candle datasets have candles")]
        )
    try:
        return await asyncio.to_thread(read_candles, store.file(row), query)
    except FileNotFoundError:  # deleted since it was looked up
        raise DatasetNotFound(
            f"no dataset {query.dataset_id!r}", reason="DATASET_NOT_FOUND"
        ) from None


def read_query(
    dataset_id: str,
    page_size: int,
    token: str,
    start_time: Timestamp | None,
    end_time: Timestamp | None,
) -> CandleQuery:
    """The query a request asks for; raises INVALID_ARGUMENT naming every bad field."""
    problems = Violations()
    problems.require(bool(dataset_id), "dataset_id", "is required")
    page: Page = read_page(
        page_size,
        token,
        kind=PAGE_KIND,
        problems=problems,
        key_length=2,
        default_size=DEFAULT_PAGE_SIZE,
        max_size=MAX_PAGE_SIZE,
    )
    after_ms = None
    if page.after is not None:
        token_dataset, last = page.after
        if token_dataset != dataset_id or not _is_ms(last):
            problems.add("page_token", "is not a token of this dataset's candles")
        else:
            after_ms = int(last)
    start_ms = _ms(start_time, "start_time", problems)
    end_ms = _ms(end_time, "end_time", problems)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        problems.add("end_time", "must be after start_time")
    problems.raise_if_any()
    return CandleQuery(dataset_id, page.size, after_ms, start_ms, end_ms)


def read_candles(path: Path, query: CandleQuery) -> CandlePage:
    """One page of the (6, n) array at `path` (blocking: call it in a thread)."""
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
    rows = np.array(columns[:, first:last]).T.tolist() if last > first else []
    candles = [_candle(row) for row in rows]
    more = last < end
    next_token = page_token(PAGE_KIND, query.dataset_id, str(int(rows[-1][0]))) if more else ""
    return CandlePage(candles, next_token)


def _candle(row: list[float]) -> common_pb2.Candle:
    time_ms, opening, high, low, close, volume = row
    stamp = Timestamp()
    stamp.FromMilliseconds(int(time_ms))
    return common_pb2.Candle(
        open_time=stamp,
        open=float_text(opening),
        high=float_text(high),
        low=float_text(low),
        close=float_text(close),
        volume=float_text(volume),
    )


def float_text(value: float) -> str:
    """decimal_text of the shortest text that reads back as the same float (its repr)."""
    text = repr(value)
    if "e" in text or "n" in text or value == 0:  # exponent, nan, inf, or -0.0
        return decimal_text(Decimal(text)) if math.isfinite(value) else ""
    # A plain repr has a point and no trailing zeros but a lone ".0": the common case,
    # without Decimal (a page of 5,000 candles is 30,000 numbers).
    return text.removesuffix(".0")


def _ms(stamp: Timestamp | None, field: str, problems: Violations) -> int | None:
    if stamp is None or problems.timestamp(field, stamp) is None:
        return None
    return int(stamp.ToMilliseconds())


def _is_ms(text: str) -> bool:
    body = text.removeprefix("-")
    return body.isascii() and body.isdigit() and len(body) <= 18
