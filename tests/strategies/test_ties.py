"""Ties stay ties: every indicator against an exact computation (fractions, or decimals
with 60 digits for the recursive filters) on closes with flat runs and repeated values,
and no crossing invented inside a flat run."""

from __future__ import annotations

import decimal
import math
from fractions import Fraction

import numpy as np
import pytest

from strategies import builtin, indicators
from strategies.candles import Candles, FloatArray

PRECISE = decimal.Context(prec=60)


def flat_run_closes() -> FloatArray:
    """Four-decimal closes around 0.05 (an ETH/BTC-like quote), with flat runs of 40 to
    150 bars at repeated levels (0.0517 among them) between random stretches."""
    rng = np.random.default_rng(16)
    pieces: list[FloatArray] = []
    level = 0.0517
    for run in range(8):
        walk = level + np.cumsum(rng.choice([-1e-4, 0.0, 1e-4], size=int(rng.integers(30, 90))))
        pieces.append(walk)
        level = 0.0517 if run % 2 == 0 else float(np.round(walk[-1], 4))
        pieces.append(np.full(int(rng.integers(40, 150)), level))
    closes: FloatArray = np.round(np.concatenate(pieces), 4).astype(np.float64)
    return closes


def flat_bars(close: FloatArray, span: int) -> list[int]:
    """Bars t whose closes t - span .. t are all equal (both t and t-1 sit in a run at
    least `span` bars old)."""
    return [t for t in range(span, len(close)) if np.all(close[t - span : t + 1] == close[t])]


def exact_sma(close: FloatArray, window: int, quoted: bool = False) -> list[Fraction | None]:
    """Exact window means of the floats, or (`quoted`) of the decimal quotes they stand
    for (0.0517 as 517/10000)."""
    exact = [Fraction(repr(value) if quoted else value) for value in close.tolist()]
    return [
        sum(exact[t - window + 1 : t + 1], Fraction(0)) / window if t >= window - 1 else None
        for t in range(len(exact))
    ]


def exact_ema(close: FloatArray, alpha: Fraction) -> list[decimal.Decimal]:
    a = PRECISE.divide(decimal.Decimal(alpha.numerator), decimal.Decimal(alpha.denominator))
    values = [decimal.Decimal(value) for value in close.tolist()]
    out = [values[0]]
    for value in values[1:]:
        out.append(PRECISE.add(out[-1], PRECISE.multiply(a, PRECISE.subtract(value, out[-1]))))
    return out


@pytest.mark.parametrize("window", [2, 10, 30, 100])
def test_sma_is_the_exact_mean_of_the_quoted_prices_rounded(window: int) -> None:
    close = flat_run_closes()
    got = indicators.sma(close, window)
    for t, exact in enumerate(exact_sma(close, window, quoted=True)):
        if exact is None:
            assert math.isnan(got[t])
        else:
            # The float nearest the exact mean: on a flat window, the close itself.
            assert got[t] == float(exact), (t, got[t], float(exact))


@pytest.mark.parametrize("window", [2, 10, 30, 100])
def test_sma_of_values_that_are_no_decimal_quotes_is_within_an_ulp(window: int) -> None:
    # Closes scaled by an adjustment factor (as adjusted stock closes are): no decimal
    # places reproduce them, so the compensated sums take over.
    close = flat_run_closes() * (184.29 / 185.64)
    got = indicators.sma(close, window)
    for t, exact in enumerate(exact_sma(close, window)):
        if exact is None:
            continue
        nearest = float(exact)
        assert abs(got[t] - nearest) <= math.ulp(nearest), t
        if np.all(close[t - window + 1 : t + 1] == close[t]):
            assert got[t] == close[t], t


def test_the_mean_of_ten_closes_of_0_0517_is_0_0517() -> None:
    assert indicators.sma(np.full(10, 0.0517), 10)[-1] == 0.0517


@pytest.mark.parametrize("window", [5, 20])
def test_rolling_std_is_exact_and_zero_on_flat_windows(window: int) -> None:
    close = flat_run_closes()
    got = indicators.rolling_std(close, window)
    exact = [Fraction(value) for value in close.tolist()]
    for t in range(window - 1, len(close)):
        part = exact[t - window + 1 : t + 1]
        mean = sum(part, Fraction(0)) / window
        variance = sum(((value - mean) ** 2 for value in part), Fraction(0)) / window
        if variance == 0:
            assert got[t] == 0.0, t
        else:
            assert got[t] == pytest.approx(math.sqrt(variance), rel=1e-9, abs=1e-15), t


@pytest.mark.parametrize("span", [2, 12, 26])
def test_ema_is_the_exact_recursion(span: int) -> None:
    close = flat_run_closes()
    got = indicators.ema_span(close, span)
    exact = exact_ema(close, Fraction(2, span + 1))
    for t in range(span - 1, len(close)):
        assert got[t] == pytest.approx(float(exact[t]), rel=1e-13), t


def test_rsi_is_the_exact_wilder_rsi() -> None:
    close = flat_run_closes()
    period = 14
    got = indicators.rsi(close, period)
    change = np.diff(close)
    gains = exact_ema(np.clip(change, 0.0, None), Fraction(1, period))
    losses = exact_ema(np.clip(-change, 0.0, None), Fraction(1, period))
    for t in range(period, len(close)):
        gain, loss = gains[t - 1], losses[t - 1]
        expected = 100.0 if loss == 0 else float(100 - 100 / (1 + PRECISE.divide(gain, loss)))
        assert got[t] == pytest.approx(expected, rel=1e-11), t


def candles_of(close: FloatArray) -> Candles:
    time = np.arange(len(close), dtype=np.int64) * 60_000
    return Candles(time, close, close, close, close, np.ones(len(close)))


@pytest.mark.parametrize(("fast", "slow"), [(3, 10), (10, 30)])
def test_sma_cross_invents_no_crossing_inside_a_flat_run(fast: int, slow: int) -> None:
    close = flat_run_closes()
    target = builtin.sma_cross(candles_of(close), fast, slow)
    inside = flat_bars(close, slow)
    assert inside, "the data has flat runs longer than the slow window"
    assert not np.any(~np.isnan(target[inside]))
    # Every crossing is one of the exact means of the quoted prices.
    fast_exact, slow_exact = exact_sma(close, fast, True), exact_sma(close, slow, True)
    expected = []
    for t in range(slow, len(close)):
        before = fast_exact[t - 1] - slow_exact[t - 1]  # type: ignore[operator]
        now = fast_exact[t] - slow_exact[t]  # type: ignore[operator]
        if (before < 0 < now) or (before > 0 > now):
            expected.append(t)
    assert np.flatnonzero(~np.isnan(target)).tolist() == expected


def test_bollinger_breakout_sees_no_band_break_on_a_flat_window() -> None:
    close = flat_run_closes()
    window = 20
    target = builtin.bollinger_breakout(candles_of(close), window, 2.0)
    assert not np.any(~np.isnan(target[flat_bars(close, window)]))


@pytest.mark.parametrize("strategy", ["ema_cross", "macd"])
def test_ema_crossings_are_the_exact_ones(strategy: str) -> None:
    close = flat_run_closes()
    fast, slow = 5, 12
    if strategy == "ema_cross":
        target = builtin.ema_cross(candles_of(close), fast, slow)
    else:
        target = builtin.macd(candles_of(close), fast, slow, 4)
    fast_line = exact_ema(close, Fraction(2, fast + 1))
    slow_line = exact_ema(close, Fraction(2, slow + 1))
    if strategy == "ema_cross":
        difference = [f - s for f, s in zip(fast_line, slow_line, strict=True)]
        sizes = [max(abs(f), abs(s)) for f, s in zip(fast_line, slow_line, strict=True)]
    else:
        line = [f - s for f, s in zip(fast_line, slow_line, strict=True)]
        trigger = [decimal.Decimal(0)] * (slow - 1) + exact_ema_decimal(line[slow - 1 :], 4)
        difference = [a - b for a, b in zip(line, trigger, strict=True)]
        sizes = [max(abs(a), abs(b)) for a, b in zip(line, trigger, strict=True)]
    tolerance = decimal.Decimal(indicators.TIE_TOLERANCE)
    sign = [0 if abs(d) <= tolerance * size else (1 if d > 0 else -1) for d, size in
            zip(difference, sizes, strict=True)]  # fmt: skip
    # Both lines are defined from the slow span on (MACD's trigger: its own span later).
    first = slow if strategy == "ema_cross" else slow + 3
    expected = [t for t in range(first, len(close)) if sign[t - 1] * sign[t] < 0]
    assert np.flatnonzero(~np.isnan(target)).tolist() == expected
    assert not np.any(~np.isnan(target[flat_bars(close, 3 * slow)]))


def exact_ema_decimal(values: list[decimal.Decimal], span: int) -> list[decimal.Decimal]:
    a = PRECISE.divide(decimal.Decimal(2), decimal.Decimal(span + 1))
    out = [values[0]]
    for value in values[1:]:
        out.append(PRECISE.add(out[-1], PRECISE.multiply(a, PRECISE.subtract(value, out[-1]))))
    return out


@pytest.mark.parametrize(("fast", "slow"), [(10, 30), (5, 20)])
def test_sma_cross_on_real_candles_has_exactly_the_exact_crossings(
    ada_btc_5m: Candles, fast: int, slow: int
) -> None:
    """ADA/BTC 5m (Freqtrade's test data) quotes in satoshis and sits flat for runs of
    bars: running sums invented 3 crossings there (228 for 10/30 where 225 exist)."""
    close = ada_btc_5m.close
    fast_exact = exact_sma(close, fast, quoted=True)
    slow_exact = exact_sma(close, slow, quoted=True)
    expected = [
        t
        for t in range(slow, len(close))
        if (fast_exact[t - 1] - slow_exact[t - 1]) * (fast_exact[t] - slow_exact[t]) < 0  # type: ignore[operator]
    ]
    target = builtin.sma_cross(ada_btc_5m, fast, slow)
    assert np.flatnonzero(~np.isnan(target)).tolist() == expected
