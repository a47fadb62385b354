"""Candle files in, a checked (n, 6) float64 matrix out, with the gaps in it.

A malformed file raises MalformedDataset naming the problem and the first row that
shows it (row numbers count data rows from 1). Nothing is stored until it passes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from services.backtest.bars.candles import COLUMNS, BoolArray, FloatArray, IntArray
from services.backtest.datasets.timeframes import TIMEFRAME_MS, timeframe_of

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Gap:
    """Candles missing between `after_ms` (the last one before) and `resume_ms`."""

    after_ms: int
    resume_ms: int
    missing: int


@dataclass(frozen=True)
class CheckedCandles:
    matrix: FloatArray
    timeframe: str
    gaps: tuple[Gap, ...]


class MalformedDataset(ValueError):
    """The file is not a valid dataset: fix the named problem and import again.

    Plain (no gRPC) so that it crosses from the import process; the server turns it into
    INVALID_ARGUMENT with a violation on `field`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field = field
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def _decompress(content: bytes) -> bytes:
    return gzip.decompress(content) if content[:2] == GZIP_MAGIC else content


def parse_freqtrade_json(content: bytes, field: str) -> FloatArray:
    """Freqtrade's candle files: [[ts_ms, open, high, low, close, volume], ...]."""
    try:
        rows = json.loads(_decompress(content))
    except (ValueError, OSError) as error:
        raise MalformedDataset(field, f"is not JSON: {error}") from None
    if not isinstance(rows, list):
        raise MalformedDataset(field, "must be a JSON list of [ts_ms, o, h, l, c, v] rows")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(COLUMNS):
            raise MalformedDataset(
                field, f"row {number}: expected 6 columns {list(COLUMNS)}, got {row!r:.80}"
            )
    try:
        return np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS))
    except (TypeError, ValueError):
        raise MalformedDataset(field, "every value must be a number") from None


def parse_csv(content: bytes, field: str) -> FloatArray:
    """CSV with the header time,open,high,low,close,volume; time in ms or ISO 8601."""
    text = _decompress(content).decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = [name.strip().lower() for name in next(reader, [])]
    if tuple(header) != COLUMNS:
        raise MalformedDataset(
            field, f"the header must be {','.join(COLUMNS)}, got {','.join(header) or 'nothing'}"
        )
    rows: list[list[float]] = []
    for number, record in enumerate(reader, start=1):
        if not record:
            continue
        if len(record) != len(COLUMNS):
            raise MalformedDataset(field, f"row {number}: expected 6 columns, got {len(record)}")
        try:
            rows.append([_time_ms(record[0]), *(float(value) for value in record[1:])])
        except ValueError as error:
            raise MalformedDataset(field, f"row {number}: {error}") from None
    return np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS))


def _time_ms(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r} is neither ms since the epoch nor ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() * 1000.0


def check(matrix: FloatArray, field: str, timeframe: str | None) -> CheckedCandles:
    """Validates the candles and finds their gaps; `timeframe` None infers it."""
    if len(matrix) < 2:
        raise MalformedDataset(field, f"needs at least 2 candles, got {len(matrix)}")
    _first_bad(np.logical_not(np.isfinite(matrix).all(axis=1)), field, "a value is NaN or infinite")
    time, opening, high, low, close, volume = matrix.T
    _first_bad(time != np.round(time), field, "time is not a whole number of ms")
    steps = np.diff(time)
    _first_bad(np.append(False, steps < 0), field, "time goes backwards (rows must be sorted)")
    _first_bad(np.append(False, steps == 0), field, "duplicate timestamp")
    _first_bad(high < low, field, "high is below low")
    _first_bad((opening > high) | (opening < low), field, "open is outside [low, high]")
    _first_bad((close > high) | (close < low), field, "close is outside [low, high]")
    _first_bad(low <= 0, field, "prices must be positive")
    _first_bad(volume < 0, field, "volume is negative")
    if timeframe is None:
        timeframe = timeframe_of(int(np.min(steps)))
        if timeframe is None:
            raise MalformedDataset(
                field, f"candles are {int(np.min(steps))} ms apart: not a known timeframe"
            )
    step_ms = TIMEFRAME_MS[timeframe]
    _first_bad(np.append(False, steps % step_ms != 0), field, f"time is off the {timeframe} grid")
    return CheckedCandles(matrix, timeframe, find_gaps(time.astype(np.int64), step_ms))


def find_gaps(time_ms: IntArray, step_ms: int) -> tuple[Gap, ...]:
    steps = np.diff(time_ms)
    where = np.flatnonzero(steps > step_ms)
    return tuple(
        Gap(int(time_ms[i]), int(time_ms[i + 1]), int(steps[i] // step_ms - 1)) for i in where
    )


def _first_bad(bad: BoolArray, field: str, problem: str) -> None:
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise MalformedDataset(field, f"row {row}: {problem}")
