"""One run's equity curve and trades, as an .npz of binary columns beside the database.

Not zlib-compressed: float columns barely shrink and compressing a large sweep's trades
cost more than running it.

The curve is kept at full resolution up to MAX_STORED_POINTS and thinned evenly
beyond that (always keeping the last point); trades are kept whole, as columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from strategies.candles import FloatArray, IntArray

MAX_STORED_POINTS = 20_000

TRADE_COLUMNS = (
    "direction",
    "entry_time_ms",
    "exit_time_ms",
    "quantity",
    "entry_price",
    "exit_price",
    "pnl",
    "return_fraction",
    "fees",
)
# Bar runs also keep where each trade entered and left (bar indices) and why it left
# (an index into bars.engine.EXIT_REASONS); -1 where unknown (tick runs, older files).
BAR_TRADE_COLUMNS = ("entry_bar", "exit_bar", "exit_reason")


@dataclass(frozen=True)
class StoredRun:
    equity_time_ms: IntArray
    equity: FloatArray
    trades: dict[str, npt.NDArray[Any]]

    @property
    def trade_count(self) -> int:
        return len(self.trades["pnl"])


def thin(count: int, limit: int) -> IntArray:
    """At most `limit` evenly spread indices into `count` points, the last one included."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))


def thinned(run: StoredRun) -> StoredRun:
    """The run as it will be stored: the curve thinned to MAX_STORED_POINTS."""
    keep = thin(len(run.equity), MAX_STORED_POINTS)
    return StoredRun(run.equity_time_ms[keep], run.equity[keep], run.trades)


def save(path: Path, run: StoredRun) -> None:
    keep = thin(len(run.equity), MAX_STORED_POINTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    arrays: dict[str, Any] = {
        "equity_time_ms": run.equity_time_ms[keep],
        "equity": run.equity[keep],
        **{f"trade_{name}": np.asarray(run.trades[name]) for name in TRADE_COLUMNS},
        **{
            f"trade_{name}": np.asarray(run.trades[name], dtype=np.int64)
            for name in BAR_TRADE_COLUMNS
            if name in run.trades
        },
        # +1 / -1 fits a byte.
        "trade_direction": np.asarray(run.trades["direction"], dtype=np.int8),
    }
    np.savez(temporary, **arrays)
    temporary.replace(path)


def load(path: Path) -> StoredRun:
    with np.load(path) as stored:
        trades = {name: stored[f"trade_{name}"] for name in TRADE_COLUMNS}
        count = len(trades["pnl"])
        for name in BAR_TRADE_COLUMNS:
            key = f"trade_{name}"
            trades[name] = stored[key] if key in stored else np.full(count, -1, dtype=np.int64)
        return StoredRun(
            equity_time_ms=stored["equity_time_ms"], equity=stored["equity"], trades=trades
        )


def trade_page(run: StoredRun, offset: int, limit: int) -> dict[str, npt.NDArray[Any]]:
    return {name: column[offset : offset + limit] for name, column in run.trades.items()}


def equity_sample(run: StoredRun, max_points: int) -> tuple[IntArray, FloatArray]:
    """The stored curve thinned evenly to at most `max_points` (the last point kept)."""
    keep = thin(len(run.equity), max_points)
    return run.equity_time_ms[keep], run.equity[keep]
