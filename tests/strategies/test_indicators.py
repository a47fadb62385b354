"""The vectorized indicators against pandas' rolling and ewm on real closes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategies import indicators
from strategies.candles import Candles


def test_sma_and_std_match_pandas_rolling(eth_btc_1m: Candles) -> None:
    close = pd.Series(eth_btc_1m.close)
    for window in (2, 10, 30, 200):
        np.testing.assert_allclose(
            indicators.sma(eth_btc_1m.close, window), close.rolling(window).mean(), rtol=1e-10
        )
        np.testing.assert_allclose(
            indicators.rolling_std(eth_btc_1m.close, window),
            close.rolling(window).std(ddof=0),
            rtol=1e-8,
            atol=1e-8,  # pandas rolls its std online: ~1e-9 off on near-flat windows
        )


def test_ema_matches_pandas_ewm(eth_btc_1m: Candles) -> None:
    close = pd.Series(eth_btc_1m.close)
    for span in (2, 12, 26, 500):
        expected = close.ewm(span=span, adjust=False).mean().to_numpy()
        expected[: span - 1] = np.nan
        np.testing.assert_allclose(
            indicators.ema_span(eth_btc_1m.close, span), expected, rtol=1e-10
        )


def test_rsi_is_wilders(eth_btc_1m: Candles) -> None:
    period = 14
    change = pd.Series(eth_btc_1m.close).diff()
    gain = change.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    loss = (-change.clip(upper=0)).ewm(alpha=1 / period, adjust=False).mean()
    expected = (100 - 100 / (1 + gain / loss)).to_numpy()
    expected[:period] = np.nan
    np.testing.assert_allclose(indicators.rsi(eth_btc_1m.close, period), expected, rtol=1e-9)


def test_crossings_are_strict_on_both_bars() -> None:
    up, down = indicators.crossings(np.array([np.nan, -1.0, 0.0, 1.0, -2.0, 3.0]))
    # Through zero (-1, 0, 1) is not a cross, as in backtesting.py's `crossover`.
    assert up.tolist() == [False, False, False, False, False, True]
    assert down.tolist() == [False, False, False, False, True, False]
