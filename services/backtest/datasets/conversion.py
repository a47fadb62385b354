"""The numpy side of a dataset import (see importer): parse, check, write the array file.
Imported only inside the import's child process, never by the server."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from services.backtest.datasets import candle_files, ticks
from services.backtest.datasets.importer import Imported, ImportJob


def run(job: ImportJob) -> Imported:
    if job.source_format in ("csv", "freqtrade_json"):
        return _import_candles(job)
    return _import_ticks(job)


def _read(job: ImportJob) -> bytes:
    return job.content if job.content else Path(job.source_path).read_bytes()


def _import_candles(job: ImportJob) -> Imported:
    if job.source_format == "csv":
        matrix = candle_files.parse_csv(_read(job), job.field, job.adjusted_close)
    else:
        matrix = candle_files.parse_freqtrade_json(_read(job), job.field)
    checked = candle_files.check(matrix, job.field, job.timeframe)
    destination = Path(job.destination)
    np.save(destination, np.ascontiguousarray(checked.matrix.T))
    time = checked.matrix[:, 0]
    return Imported(
        kind="candles",
        rows=len(checked.matrix),
        start_ms=int(time[0]),
        end_ms=int(time[-1]),
        size_bytes=destination.stat().st_size,
        timeframe=checked.timeframe,
        gaps=[[gap.after_ms, gap.resume_ms, gap.missing] for gap in checked.gaps],
    )


def _import_ticks(job: ImportJob) -> Imported:
    if job.source_format == "hftbacktest_npz":
        events = ticks.read_npz(job.content or Path(job.source_path), job.field)
    elif job.content:
        with tempfile.NamedTemporaryFile(suffix=".gz") as raw:
            raw.write(job.content)
            raw.flush()
            events = ticks.convert_binance_futures(Path(raw.name))
    else:
        events = ticks.convert_binance_futures(Path(job.source_path))
    checked = ticks.check(events, job.field)
    destination = Path(job.destination)
    np.savez_compressed(destination, data=checked.events)
    return Imported(
        kind="ticks",
        rows=len(checked.events),
        start_ms=checked.start_ms,
        end_ms=checked.end_ms,
        size_bytes=destination.stat().st_size,
        timeframe="",
        gaps=[],
    )
