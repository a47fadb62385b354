"""Vectorized indicators (numpy only, no per-bar Python loop).

Each returns an array as long as its input, NaN where the window is not yet full.
Recursive filters (EMA, Wilder's RMA) are evaluated in closed form over blocks, so the
Python loop runs once per block of up to thousands of bars, never once per bar.
"""

from __future__ import annotations

import math

import numpy as np

from strategies.candles import BoolArray, FloatArray
from strategies.candles import IntArray as IntegerArray

# Keeps (1 - alpha) ** -block within float64 range with ample headroom.
_MAX_GROWTH_LOG = 600.0


def sma(values: FloatArray, window: int) -> FloatArray:
    """Simple moving average, NaN for the first window - 1 bars."""
    return smas(values, (window,))[0]


def smas(values: FloatArray, windows: tuple[int, ...]) -> list[FloatArray]:
    """Several simple moving averages, each the float nearest the exact window mean
    (exact where the window is flat: the mean of ten closes of 0.0517 is 0.0517).

    A plain running sum leaves rounding noise (that mean came out as
    0.051699999999999996) that breaks ties on flat stretches and invents crossings.
    Prices quoted in decimals (up to 12 places, as every exchange quotes them) are summed
    exactly as integers of their last decimal place, and each window's sum is divided
    once: the correctly rounded mean of the quoted prices. Other values take compensated
    sums: the running sum carries its rounding error exactly (error-free transformations,
    vectorized), and the division is corrected by its exact remainder (within an ulp).
    """
    valid = [window for window in windows if 0 < window <= len(values)]
    scaled = _as_decimal_units(values, max(valid, default=1))
    if scaled is None:
        compensated = _compensated_cumsum(values)
    else:
        units, scale = scaled
        integer_sums = np.cumsum(units)
    averages: list[FloatArray] = []
    for window in windows:
        out = np.full(len(values), np.nan)
        if window in valid:
            if scaled is None:
                high, low = _window_sums(*compensated, window)
                out[window - 1 :] = _divide(high, low, float(window))
            else:
                window_sums = np.empty(len(values) - window + 1, dtype=np.int64)
                window_sums[0] = integer_sums[window - 1]
                np.subtract(integer_sums[window:], integer_sums[:-window], out=window_sums[1:])
                np.divide(window_sums, float(window) * scale, out=out[window - 1 :])
        averages.append(out)
    return averages


# Exactly representable integers (float64) and decimal places tried.
_EXACT_INTEGER = 2.0**53
_MAX_DECIMALS = 12
_SAMPLE = 1000


def _as_decimal_units(values: FloatArray, window: int) -> tuple[IntegerArray, float] | None:
    """The values as integers of 10**-d (the fewest places that reproduce every value)
    and 10**d, when window sums of them stay exact in float64; else None."""
    if len(values) == 0 or not np.all(np.isfinite(values)):
        return None
    sample = values[:_SAMPLE]
    for places in range(_MAX_DECIMALS + 1):
        scale = 10.0**places
        if not np.array_equal(np.rint(sample * scale) / scale, sample):
            continue
        units = np.rint(values * scale)
        largest = float(np.abs(units).max())
        if largest * window >= _EXACT_INTEGER or largest * len(values) >= 2.0**62:
            return None
        if not np.array_equal(units / scale, values):
            return None
        if window * scale >= _EXACT_INTEGER:
            return None
        return units.astype(np.int64), scale
    return None


def _two_sum(a: FloatArray, b: FloatArray, total: FloatArray) -> FloatArray:
    """The exact rounding error of `total` = fl(a + b) (Knuth's TwoSum)."""
    b_part = total - a
    return (a - (total - b_part)) + (b - b_part)


def _two_product_error(a: FloatArray, b: float, product: FloatArray) -> FloatArray:
    """The exact rounding error of `product` = fl(a * b) (Dekker's product, no FMA)."""
    a_high, a_low = _split(a)
    b_high, b_low = _split(np.asarray(b))
    return ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + a_low * b_low


def _split(a: FloatArray) -> tuple[FloatArray, FloatArray]:
    scaled = 134_217_729.0 * a  # 2**27 + 1
    high = scaled - (scaled - a)
    return high, a - high


def _compensated_cumsum(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Prefix sums as (rounded sum, accumulated exact rounding errors). numpy's cumsum
    adds sequentially, so each step's error is recoverable from its neighbours."""
    sums = np.cumsum(values, dtype=np.float64)
    step_errors = np.zeros(len(values))
    if len(values) > 1:
        step_errors[1:] = _two_sum(sums[:-1], values[1:], sums[1:])
    return sums, np.cumsum(step_errors)


def _window_sums(
    sums: FloatArray, errors: FloatArray, window: int
) -> tuple[FloatArray, FloatArray]:
    """Sums over each full window as high + low parts (|low| below half an ulp of high)."""
    later_sums, later_errors = sums[window - 1 :], errors[window - 1 :]
    earlier_sums = np.concatenate(([0.0], sums[: len(sums) - window]))
    earlier_errors = np.concatenate(([0.0], errors[: len(errors) - window]))
    difference = later_sums - earlier_sums
    low = _two_sum(later_sums, -earlier_sums, difference) + (later_errors - earlier_errors)
    high = difference + low
    return high, low - (high - difference)


def _divide(high: FloatArray, low: FloatArray, divisor: float) -> FloatArray:
    """(high + low) / divisor, rounded once more after an exact remainder correction."""
    quotient = high / divisor
    product = quotient * divisor
    remainder = ((high - product) - _two_product_error(quotient, divisor, product)) + low
    return quotient + remainder / divisor


def rolling_std(values: FloatArray, window: int) -> FloatArray:
    """Population standard deviation over a sliding window (as Bollinger bands use),
    around the exact-to-an-ulp mean: exactly 0 on a flat window."""
    out = np.full(len(values), np.nan)
    if window > len(values):
        return out
    windows = np.lib.stride_tricks.sliding_window_view(values, window)
    mean = sma(values, window)[window - 1 :]
    deviations = windows - mean[:, np.newaxis]
    out[window - 1 :] = np.sqrt(np.einsum("ij,ij->i", deviations, deviations) / window)
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


# Lines closer than this (relative to their size) are tied: recursive filters (EMA,
# Wilder's RMA) approach a flat run's level geometrically and their difference sinks
# below float resolution, where its sign is noise. Real crossings of prices quoted to a
# tick are many orders of magnitude wider.
TIE_TOLERANCE = 1e-12


def crossings_between(a: FloatArray, b: FloatArray) -> tuple[BoolArray, BoolArray]:
    """Bars where line `a` crosses above `b`, and below it: `crossings` of a - b, with
    differences within TIE_TOLERANCE of the lines' size read as ties."""
    difference = a - b
    tolerance = np.abs(a)
    np.maximum(tolerance, np.abs(b), out=tolerance)
    tolerance *= TIE_TOLERANCE
    with np.errstate(invalid="ignore"):
        above = difference > tolerance
        np.negative(tolerance, out=tolerance)
        below = difference < tolerance
    return _turns(above, below)


def crossings(difference: FloatArray) -> tuple[BoolArray, BoolArray]:
    """Bars where a - b (given as `difference`) turns from negative to positive, and from
    positive to negative: backtesting.py's `crossover`, strict on both bars (a pass
    through an exact tie is no crossing)."""
    with np.errstate(invalid="ignore"):
        return _turns(difference > 0, difference < 0)


def _turns(above: BoolArray, below: BoolArray) -> tuple[BoolArray, BoolArray]:
    up = np.zeros(len(above), dtype=bool)
    down = np.zeros(len(above), dtype=bool)
    np.logical_and(below[:-1], above[1:], out=up[1:])
    np.logical_and(above[:-1], below[1:], out=down[1:])
    return up, down
