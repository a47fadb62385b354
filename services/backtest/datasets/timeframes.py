"""Candle timeframes by name, as ccxt and Freqtrade spell them ("1m", "4h", "1M").

ccxt's names are case-sensitive: "1m" is one minute, "1M" one calendar month. The
proto's enum spells them TIMEFRAME_1M (minute) and TIMEFRAME_1MO (month); see
`ENUM_NAMES` in the servicer. A month has no fixed length: monthly candles open on the
1st at 00:00 UTC, and their gaps count missing months.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the server reads the names only; numpy is for month_numbers' callers
    from strategies.candles import BoolArray, IntArray

MINUTE_MS = 60_000
DAY_MS = 1440 * MINUTE_MS
MONTH = "1M"
TIMEFRAME_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": DAY_MS,
    "1w": 7 * DAY_MS,
}
# Every timeframe a dataset can have (the fixed ones and the calendar month).
TIMEFRAMES = (*TIMEFRAME_MS, MONTH)
# The shortest and longest month.
_MONTH_STEPS_MS = (28 * DAY_MS, 31 * DAY_MS)


def timeframe_of(milliseconds: int) -> str | None:
    """The timeframe whose candles are this far apart (28 to 31 days: a month)."""
    if _MONTH_STEPS_MS[0] <= milliseconds <= _MONTH_STEPS_MS[1]:
        return MONTH
    return next((name for name, ms in TIMEFRAME_MS.items() if ms == milliseconds), None)


def month_numbers(time_ms: IntArray) -> tuple[IntArray, BoolArray]:
    """Months since 1970-01 of each time, and whether it is a month's first instant."""
    moments = time_ms.astype("datetime64[ms]")
    months = moments.astype("datetime64[M]")
    return months.astype("int64"), months.astype("datetime64[ms]") == moments
