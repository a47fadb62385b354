"""Calendar months of candle times, for monthly ("1M") datasets: numpy work that only
the import child and the workers do. The timeframe table itself is common.timeframes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.backtest.bars.candles import BoolArray, IntArray


def month_numbers(time_ms: IntArray) -> tuple[IntArray, BoolArray]:
    """Months since 1970-01 of each time, and whether it is a month's first instant."""
    moments = time_ms.astype("datetime64[ms]")
    months = moments.astype("datetime64[M]")
    return months.astype("int64"), months.astype("datetime64[ms]") == moments
