"""A dataset as the service knows it: what was imported, and where its array file is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Dataset:
    dataset_id: str
    name: str
    kind: str  # "candles" or "ticks"
    # How it came in: "csv", "freqtrade_json", "hftbacktest_npz", "binance_futures_raw".
    source_format: str
    symbol: str
    timeframe: str  # a common.timeframes name; "" for ticks
    rows: int
    start_ms: int
    end_ms: int
    size_bytes: int
    # (after_ms, resume_ms, missing candles) of each gap.
    gaps: tuple[tuple[int, int, int], ...]
    tick_size: float
    lot_size: float
    calendar: str  # "continuous" or "trading_days"
    file_name: str  # relative to the datasets directory
    create_time: datetime
