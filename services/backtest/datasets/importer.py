"""Dataset imports, run in a short-lived child process: parsing a large file costs far
more memory than the server's budget allows, and hftbacktest's converter must not load
into the server. The child checks, writes the array file and returns the metadata;
a problem comes back as MalformedDataset (a plain, picklable error). numpy is imported
in the child only (services.backtest.datasets.conversion): the idle server never loads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImportJob:
    source_format: str  # csv | freqtrade_json | hftbacktest_npz | binance_futures_raw
    content: bytes
    source_path: str
    # For messages: "content" or "path".
    field: str
    timeframe: str | None
    destination: str
    # CSV: use the Adj Close column as the close (see candles.parse_csv).
    adjusted_close: bool = False


@dataclass(frozen=True)
class Imported:
    kind: str
    rows: int
    start_ms: int
    end_ms: int
    size_bytes: int
    timeframe: str
    gaps: list[list[int]]


def run_import(job: ImportJob) -> Imported:
    """In the child process: the import itself."""
    from services.backtest.datasets import conversion  # noqa: PLC0415 - numpy, child only

    return conversion.run(job)
