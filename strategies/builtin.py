"""The built-in strategies' signals (their schemas: strategies.schemas). Each emits
+1 / -1 on the bar its condition fires and NaN elsewhere; the engine holds the last
wanted position (and reads -1 as "exit" when shorting is off)."""

from __future__ import annotations

import numpy as np

from strategies import indicators
from strategies.candles import BoolArray, Candles, FloatArray


def _events(long_when: BoolArray, short_when: BoolArray, length: int) -> FloatArray:
    target = np.full(length, np.nan)
    target[short_when] = -1.0
    target[long_when] = 1.0
    return target


def buy_and_hold(candles: Candles) -> FloatArray:
    target = np.full(len(candles), np.nan)
    target[0] = 1.0
    return target


def _crosses(fast_line: FloatArray, slow_line: FloatArray) -> FloatArray:
    """+1 where fast crosses above slow, -1 where it crosses below, NaN elsewhere."""
    up, down = indicators.crossings_between(fast_line, slow_line)
    return _events(up, down, len(fast_line))


def sma_cross(candles: Candles, fast: int, slow: int) -> FloatArray:
    fast_line, slow_line = indicators.smas(candles.close, (fast, slow))
    return _crosses(fast_line, slow_line)


def ema_cross(candles: Candles, fast: int, slow: int) -> FloatArray:
    return _crosses(
        indicators.ema_span(candles.close, fast), indicators.ema_span(candles.close, slow)
    )


def rsi_reversion(candles: Candles, period: int, lower: float, upper: float) -> FloatArray:
    strength = indicators.rsi(candles.close, period)
    with np.errstate(invalid="ignore"):
        return _events(strength < lower, strength > upper, len(candles))


def bollinger_breakout(candles: Candles, window: int, width: float) -> FloatArray:
    middle = indicators.sma(candles.close, window)
    spread = width * indicators.rolling_std(candles.close, window)
    with np.errstate(invalid="ignore"):
        return _events(
            candles.close > middle + spread, candles.close < middle - spread, len(candles)
        )


def macd(candles: Candles, fast: int, slow: int, signal: int) -> FloatArray:
    line = indicators.ema_span(candles.close, fast) - indicators.ema_span(candles.close, slow)
    trigger = np.full(len(line), np.nan)
    valid = slow - 1
    if valid < len(line):
        trigger[valid:] = indicators.ema_span(line[valid:], signal)
    return _crosses(line, trigger)
