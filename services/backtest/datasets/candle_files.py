"""Candle files in, a checked (n, 6) float64 matrix out, with the gaps in it.

A malformed file raises MalformedDataset naming the problem and the first row that
shows it (row numbers count data rows from 1). Nothing is stored until it passes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from common import timeframes
from services.backtest.bars.candles import COLUMNS, BoolArray, FloatArray, IntArray
from services.backtest.datasets.problems import MalformedDataset
from services.backtest.datasets.timeframes import month_numbers

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


# CSV header names, case-insensitive, by the column they fill.
CSV_NAMES = {
    "time": ("time", "date", "datetime", "timestamp", "date_time", "open_time", "open time"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol"),
    "adjusted_close": ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close"),
}
_COLUMN_OF = {name: column for column, names in CSV_NAMES.items() for name in names}
# Epoch numbers: seconds below 1e11 (until the year 5138), milliseconds below 1e14,
# microseconds below 1e17, nanoseconds beyond.
_EPOCH_UNITS = ((1e11, 1000.0), (1e14, 1.0), (1e17, 1e-3), (math.inf, 1e-6))


def parse_csv(content: bytes, field: str, adjusted_close: bool = False) -> FloatArray:
    """CSV candles as users have them (exchange exports, Yahoo, MetaTrader, pandas):

    - a header row naming the columns in any order and case: a time column (Date,
      Datetime, Timestamp, Time, open_time), Open, High, Low, Close, and optionally
      Volume (0 without it) and Adj Close; other columns are ignored;
    - separated by commas (or semicolons or tabs, as the header shows);
    - times as ISO 8601 (a date, or a date and time; without an offset: UTC) or epoch
      numbers in seconds, milliseconds, microseconds or nanoseconds (by magnitude);
    - Adj Close is ignored, unless `adjusted_close`: then it is the close, and open, high
      and low are scaled by the same factor (adj close / close), as Yahoo adjusts.

    A bad row is named by its number (data rows count from 1) and what is wrong with it.
    """
    text = _decompress(content).decode("utf-8-sig", errors="replace")
    first_line = text.split("\n", 1)[0]
    delimiter = next((d for d in (",", ";", "\t") if d in first_line), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [name.strip().strip('"').lower() for name in next(reader, [])]
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        column = _COLUMN_OF.get(name)
        if column is not None and column not in positions:
            positions[column] = position
    missing = [column for column in COLUMNS[:5] if column not in positions]
    if missing:
        raise MalformedDataset(
            field,
            f"the header has no {', '.join(missing)} column (it needs a time column named "
            "Date, Datetime, Timestamp or Time, and Open, High, Low, Close; Volume is "
            f"optional), got {','.join(header) or 'nothing'}",
        )
    if adjusted_close and "adjusted_close" not in positions:
        raise MalformedDataset("adjusted_close", "the file has no Adj Close column")
    wanted = [positions.get(column, -1) for column in COLUMNS]
    adjusted = positions["adjusted_close"] if adjusted_close else -1
    width = max(positions.values()) + 1
    rows: list[list[float]] = []
    for number, record in enumerate(reader, start=1):
        if not record or not any(value.strip() for value in record):
            continue
        if len(record) < width:
            raise MalformedDataset(
                field, f"row {number}: expected {len(header)} columns, got {len(record)}"
            )
        try:
            row = [_time_ms(record[wanted[0]])]
            row += [_number(record[wanted[k]], COLUMNS[k]) for k in range(1, 5)]
            row.append(_number(record[wanted[5]], "volume") if wanted[5] >= 0 else 0.0)
            if adjusted >= 0:
                factor = _number(record[adjusted], "adj close") / row[4]
                row[1:5] = [value * factor for value in row[1:5]]
        except (ValueError, ZeroDivisionError) as error:
            raise MalformedDataset(field, f"row {number}: {error}") from None
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS))


def _number(text: str, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{column} {text.strip()!r} is not a number") from None


def _time_ms(text: str) -> float:
    text = text.strip().strip('"')
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        scale = next(factor for limit, factor in _EPOCH_UNITS if abs(number) < limit)
        return round(number * scale, 3)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"time {text!r} is neither ISO 8601 nor seconds/milliseconds since the epoch"
        ) from None
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
        timeframe = timeframes.of_step(int(np.min(steps)))
        if timeframe is None:
            raise MalformedDataset(
                field, f"candles are {int(np.min(steps))} ms apart: not a known timeframe"
            )
    time_ms = time.astype(np.int64)
    if timeframe == timeframes.MONTH:
        months, on_grid = month_numbers(time_ms)
        _first_bad(~on_grid, field, "time is not the first of a month, 00:00 UTC (the 1M grid)")
        return CheckedCandles(matrix, timeframe, find_gaps(months, 1, time_ms))
    step_ms = timeframes.milliseconds(timeframe)
    _first_bad(np.append(False, steps % step_ms != 0), field, f"time is off the {timeframe} grid")
    return CheckedCandles(matrix, timeframe, find_gaps(time_ms, step_ms))


def find_gaps(position: IntArray, step: int, time_ms: IntArray | None = None) -> tuple[Gap, ...]:
    """Gaps in a series at `position` (times in ms, or month numbers) with `step`
    between candles; `time_ms` names the gaps when positions are not times."""
    times = position if time_ms is None else time_ms
    steps = np.diff(position)
    where = np.flatnonzero(steps > step)
    return tuple(Gap(int(times[i]), int(times[i + 1]), int(steps[i] // step - 1)) for i in where)


def _first_bad(bad: BoolArray, field: str, problem: str) -> None:
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise MalformedDataset(field, f"row {row}: {problem}")
