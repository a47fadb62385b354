"""Candle timeframes: the one table every service reads.

Names are ccxt's and Freqtrade's ("1m", "4h", "1M") and are case-sensitive: "1m" is
a minute and "1M" a calendar month. The proto spells them TIMEFRAME_1M (minute) and
TIMEFRAME_1MO (month). Servicers translate the enum with `from_proto` / `to_proto`;
domain code speaks names. A month has no fixed length (`milliseconds` is None):
monthly candles open on the 1st at 00:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgequant.common.v1 import common_pb2

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
MONTH = "1M"
# The shortest and the longest month, for recognising monthly candles by their spacing.
MONTH_STEPS_MS = (28 * DAY_MS, 31 * DAY_MS)


@dataclass(frozen=True)
class Timeframe:
    name: str
    proto: int
    milliseconds: int | None  # None: the calendar month

    @property
    def seconds(self) -> float | None:
        return None if self.milliseconds is None else self.milliseconds / 1000


TIMEFRAMES: tuple[Timeframe, ...] = (
    Timeframe("1m", common_pb2.TIMEFRAME_1M, MINUTE_MS),
    Timeframe("3m", common_pb2.TIMEFRAME_3M, 3 * MINUTE_MS),
    Timeframe("5m", common_pb2.TIMEFRAME_5M, 5 * MINUTE_MS),
    Timeframe("15m", common_pb2.TIMEFRAME_15M, 15 * MINUTE_MS),
    Timeframe("30m", common_pb2.TIMEFRAME_30M, 30 * MINUTE_MS),
    Timeframe("1h", common_pb2.TIMEFRAME_1H, HOUR_MS),
    Timeframe("2h", common_pb2.TIMEFRAME_2H, 2 * HOUR_MS),
    Timeframe("4h", common_pb2.TIMEFRAME_4H, 4 * HOUR_MS),
    Timeframe("6h", common_pb2.TIMEFRAME_6H, 6 * HOUR_MS),
    Timeframe("8h", common_pb2.TIMEFRAME_8H, 8 * HOUR_MS),
    Timeframe("12h", common_pb2.TIMEFRAME_12H, 12 * HOUR_MS),
    Timeframe("1d", common_pb2.TIMEFRAME_1D, DAY_MS),
    Timeframe("1w", common_pb2.TIMEFRAME_1W, 7 * DAY_MS),
    Timeframe(MONTH, common_pb2.TIMEFRAME_1MO, None),
)
_BY_NAME = {timeframe.name: timeframe for timeframe in TIMEFRAMES}
_BY_PROTO = {timeframe.proto: timeframe for timeframe in TIMEFRAMES}
NAMES: tuple[str, ...] = tuple(_BY_NAME)
# The timeframes with a fixed length (every one but the month), by name.
FIXED_MS: dict[str, int] = {
    timeframe.name: timeframe.milliseconds
    for timeframe in TIMEFRAMES
    if timeframe.milliseconds is not None
}


def by_name(name: str) -> Timeframe | None:
    return _BY_NAME.get(name)


def from_proto(value: int) -> Timeframe | None:
    """The timeframe of a proto enum value; None for UNSPECIFIED or an unknown number."""
    return _BY_PROTO.get(value)


def to_proto(name: str) -> int:
    """The proto enum value of a timeframe name (UNSPECIFIED for an unknown one)."""
    timeframe = _BY_NAME.get(name)
    return timeframe.proto if timeframe else common_pb2.TIMEFRAME_UNSPECIFIED


def milliseconds(name: str) -> int:
    """The length of a fixed timeframe; KeyError for the month or an unknown name."""
    return FIXED_MS[name]


def of_step(step_ms: int) -> str | None:
    """The timeframe whose candles are this far apart (28 to 31 days: a month)."""
    if MONTH_STEPS_MS[0] <= step_ms <= MONTH_STEPS_MS[1]:
        return MONTH
    return next((name for name, ms in FIXED_MS.items() if ms == step_ms), None)
