"""Vectorized indicators (numpy only, no per-bar Python loop).

Each returns an array as long as its input, NaN where the window is not yet full.
Recursive filters (EMA, Wilder's RMA) are evaluated in closed form over blocks, so the
Python loop runs once per block of up to thousands of bars, never once per bar.
"""

from __future__ import annotations

import math

import numpy as np

from services.backtest.bars.candles import BoolArray, FloatArray

# Keeps (1 - alpha) ** -block within float64 range with ample headroom.
_MAX_GROWTH_LOG = 600.0


def sma(values: FloatArray, window: int) -> FloatArray:
    """Simple moving average, NaN for the first window - 1 bars."""
    return smas(values, (window,))[0]


def smas(values: FloatArray, windows: tuple[int, ...]) -> list[FloatArray]:
    """Several simple moving averages from one running sum. The sum runs over the
    values less the first one, so that it stays small and precise over long series."""
    base = float(values[0]) if len(values) else 0.0
    sums = np.cumsum(values - base)
    averages: list[FloatArray] = []
    for window in windows:
        out = np.full(len(values), np.nan)
        if window <= len(values):
            tail = out[window - 1 :]
            tail[0] = sums[window - 1]
            np.subtract(sums[window:], sums[:-window], out=tail[1:])
            tail /= window
            tail += base
        averages.append(out)
    return averages


def rolling_std(values: FloatArray, window: int) -> FloatArray:
    """Population standard deviation over a sliding window (as Bollinger bands use)."""
    out = np.full(len(values), np.nan)
    if window > len(values):
        return out
    windows = np.lib.stride_tricks.sliding_window_view(values, window)
    out[window - 1 :] = windows.std(axis=1)
    return out


def ema(values: FloatArray, alpha: float) -> FloatArray:
    """Exponential moving average y[t] = alpha*x[t] + (1-alpha)*y[t-1], seeded with the
    first non-NaN value (pandas' `ewm(alpha=..., adjust=False)`)."""
    out = np.full(len(values), np.nan)
    valid = np.flatnonzero(~np.isnan(values))
    if len(valid) == 0:
        return out
    start = int(valid[0])
    x = values[start:]
    decay = 1.0 - alpha
    if decay <= 0.0:
        out[start:] = x
        return out
    block = max(1, int(_MAX_GROWTH_LOG / -math.log(decay)))
    out[start] = x[0]
    out[start + 1 :] = _ema_from(x[1:], alpha, float(x[0]), block)
    return out


def _ema_from(x: FloatArray, alpha: float, seed: float, block: int) -> FloatArray:
    """The recursion from `seed` over x, in closed form per block:
    y[k] = decay^(k+1) * y[-1] + alpha * sum_{j<=k} decay^(k-j) * x[j]."""
    decay = 1.0 - alpha
    result = np.empty(len(x))
    previous = seed
    for begin in range(0, len(x), block):
        chunk = x[begin : begin + block]
        powers = decay ** np.arange(1, len(chunk) + 1)
        result[begin : begin + len(chunk)] = powers * (previous + np.cumsum(chunk / powers) * alpha)
        previous = float(result[begin + len(chunk) - 1])
    return result


def ema_span(values: FloatArray, span: int) -> FloatArray:
    """EMA with alpha = 2 / (span + 1), NaN for the first span - 1 bars."""
    out = ema(values, 2.0 / (span + 1.0))
    out[: span - 1] = np.nan
    return out


def rsi(close: FloatArray, period: int) -> FloatArray:
    """Wilder's RSI (RMA of gains and losses, alpha = 1/period)."""
    out = np.full(len(close), np.nan)
    if len(close) <= period:
        return out
    change = np.diff(close)
    gains = np.clip(change, 0.0, None)
    losses = np.clip(-change, 0.0, None)
    average_gain = ema(gains, 1.0 / period)
    average_loss = ema(losses, 1.0 / period)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = average_gain / average_loss
        values = 100.0 - 100.0 / (1.0 + strength)
    values = np.where(average_loss == 0.0, 100.0, values)
    out[1:] = values
    out[:period] = np.nan
    return out


def crossings(difference: FloatArray) -> tuple[BoolArray, BoolArray]:
    """Bars where a - b (given as `difference`) turns from negative to positive, and from
    positive to negative: backtesting.py's `crossover`, strict on both bars."""
    up = np.zeros(len(difference), dtype=bool)
    down = np.zeros(len(difference), dtype=bool)
    with np.errstate(invalid="ignore"):
        above = difference > 0
        below = difference < 0
    np.logical_and(below[:-1], above[1:], out=up[1:])
    np.logical_and(above[:-1], below[1:], out=down[1:])
    return up, down
