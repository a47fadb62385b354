"""The built-in strategies. Each emits +1 / -1 on the bar its condition fires and NaN
elsewhere; the engine holds the last wanted position (and reads -1 as "exit" when
shorting is off)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from services.backtest.bars.candles import BoolArray, Candles, FloatArray
from services.backtest.strategies import indicators
from services.backtest.strategies.base import Parameter, StrategyDefinition


def _events(long_when: BoolArray, short_when: BoolArray, length: int) -> FloatArray:
    target = np.full(length, np.nan)
    target[short_when] = -1.0
    target[long_when] = 1.0
    return target


def _fast_below_slow(values: Mapping[str, float]) -> list[tuple[str, str]]:
    if values["fast"] >= values["slow"]:
        return [("fast", f"must be less than slow ({values['slow']:g})")]
    return []


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


def _rsi_bounds(values: Mapping[str, float]) -> list[tuple[str, str]]:
    if values["lower"] >= values["upper"]:
        return [("lower", f"must be less than upper ({values['upper']:g})")]
    return []


BUILTINS: tuple[StrategyDefinition, ...] = (
    StrategyDefinition("buy_and_hold", "Long from the first bar to the last.", (), buy_and_hold),
    StrategyDefinition(
        "sma_cross",
        "Long when the fast SMA crosses above the slow one; short (or exit) on the cross below.",
        (
            Parameter("fast", "int", 10, 2, 10_000, "fast SMA window, bars"),
            Parameter("slow", "int", 30, 3, 10_000, "slow SMA window, bars"),
        ),
        sma_cross,
        constraints=_fast_below_slow,
    ),
    StrategyDefinition(
        "ema_cross",
        "Long when the fast EMA crosses above the slow one; short (or exit) on the cross below.",
        (
            Parameter("fast", "int", 12, 2, 10_000, "fast EMA span, bars"),
            Parameter("slow", "int", 26, 3, 10_000, "slow EMA span, bars"),
        ),
        ema_cross,
        constraints=_fast_below_slow,
    ),
    StrategyDefinition(
        "rsi_reversion",
        "Long when Wilder's RSI is below `lower`; short (or exit) when it is above `upper`.",
        (
            Parameter("period", "int", 14, 2, 1_000, "RSI period, bars"),
            Parameter("lower", "float", 30, 0, 100, "oversold level"),
            Parameter("upper", "float", 70, 0, 100, "overbought level"),
        ),
        rsi_reversion,
        constraints=_rsi_bounds,
    ),
    StrategyDefinition(
        "bollinger_breakout",
        "Long on a close above the upper Bollinger band; short (or exit) below the lower one.",
        (
            Parameter("window", "int", 20, 2, 10_000, "band window, bars"),
            Parameter("width", "float", 2.0, 0.1, 10.0, "band half-width, standard deviations"),
        ),
        bollinger_breakout,
    ),
    StrategyDefinition(
        "macd",
        "Long when MACD crosses above its signal line; short (or exit) on the cross below.",
        (
            Parameter("fast", "int", 12, 2, 10_000, "fast EMA span, bars"),
            Parameter("slow", "int", 26, 3, 10_000, "slow EMA span, bars"),
            Parameter("signal", "int", 9, 2, 10_000, "signal EMA span, bars"),
        ),
        macd,
        constraints=_fast_below_slow,
    ),
)
