"""Candles as column arrays: what strategies read and the bar engine simulates over."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# The columns of a stored candle dataset, in order (time is ms since the epoch, UTC).
COLUMNS = ("time", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Candles:
    time: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def from_columns(cls, columns: FloatArray) -> Candles:
        """From a (6, n) float64 array, one row per column in COLUMNS order (how datasets
        are stored: each column contiguous, so a memory map needs no copy)."""
        return cls(
            time=columns[0].astype(np.int64),
            open=columns[1],
            high=columns[2],
            low=columns[3],
            close=columns[4],
            volume=columns[5],
        )

    @classmethod
    def from_matrix(cls, matrix: FloatArray) -> Candles:
        """From an (n, 6) float64 array in COLUMNS order (how datasets are stored)."""
        return cls(
            time=matrix[:, 0].astype(np.int64),
            open=np.ascontiguousarray(matrix[:, 1]),
            high=np.ascontiguousarray(matrix[:, 2]),
            low=np.ascontiguousarray(matrix[:, 3]),
            close=np.ascontiguousarray(matrix[:, 4]),
            volume=np.ascontiguousarray(matrix[:, 5]),
        )

    @property
    def bar_milliseconds(self) -> int:
        """The typical bar length: the median spacing of the first timestamps."""
        if len(self.time) < 2:
            return 60_000
        return int(np.median(np.diff(self.time[:10_001])))
