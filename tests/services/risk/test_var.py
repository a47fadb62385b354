"""VaR and CVaR from real returns, against numpy and the closed-form normal figures
computed here independently; returns aligned on shared timestamps."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from services.risk.var import FloatArray, VarMethod, aligned_returns, compute_var

DATA = Path(__file__).resolve().parent / "data" / "freqtrade_5m_eth_ltc_btc.json.gz"


@pytest.fixture(scope="module")
def eth_returns() -> FloatArray:
    with gzip.open(DATA, "rt") as file:
        rows = json.load(file)["ETH/BTC"]
    closes = np.array([row[4] for row in rows], dtype=np.float64)
    returns: FloatArray = (closes[1:] / closes[:-1] - 1).reshape(-1, 1)
    return returns


def test_historical_var_is_the_loss_percentile(eth_returns: FloatArray) -> None:
    losses = -eth_returns[:, 0] * 2.0  # 2 BTC of ETH
    expected = np.percentile(losses, 99)
    result = compute_var(VarMethod.HISTORICAL, eth_returns, np.array([2.0]), 0.99, 1)
    assert result.value_at_risk == pytest.approx(expected, rel=1e-12)
    assert result.conditional_value_at_risk == pytest.approx(
        losses[losses >= expected].mean(), rel=1e-12
    )
    assert result.observations == 600
    assert result.conditional_value_at_risk >= result.value_at_risk > 0


def test_parametric_var_is_the_closed_form_normal(eth_returns: FloatArray) -> None:
    pnl = eth_returns[:, 0] * -3.0  # short 3 BTC of ETH
    mu, sigma = pnl.mean(), pnl.std(ddof=1)
    z = NormalDist().inv_cdf(0.025)
    result = compute_var(VarMethod.PARAMETRIC, eth_returns, np.array([-3.0]), 0.975, 4)
    assert result.value_at_risk == pytest.approx(-(4 * mu + 2 * sigma * z), rel=1e-9)
    assert result.conditional_value_at_risk == pytest.approx(
        2 * sigma * NormalDist().pdf(z) / 0.025 - 4 * mu, rel=1e-9
    )


def test_monte_carlo_converges_to_the_normal_figure_and_repeats_under_a_seed(
    eth_returns: FloatArray,
) -> None:
    values = np.array([1.0])
    normal = compute_var(VarMethod.PARAMETRIC, eth_returns, values, 0.99, 1)
    simulated = compute_var(
        VarMethod.MONTE_CARLO, eth_returns, values, 0.99, 1, simulations=200_000, seed=3
    )
    assert simulated.value_at_risk == pytest.approx(normal.value_at_risk, rel=0.03)
    assert simulated.conditional_value_at_risk == pytest.approx(
        normal.conditional_value_at_risk, rel=0.03
    )
    again = compute_var(
        VarMethod.MONTE_CARLO, eth_returns, values, 0.99, 1, simulations=200_000, seed=3
    )
    assert again == simulated


def test_no_position_no_risk(eth_returns: FloatArray) -> None:
    result = compute_var(VarMethod.HISTORICAL, eth_returns, np.array([0.0]), 0.99, 1)
    assert (result.value_at_risk, result.conditional_value_at_risk) == (0.0, 0.0)


def test_returns_are_aligned_on_the_timestamps_every_symbol_has() -> None:
    symbols, returns = aligned_returns(
        {
            "B/X": [(1, 10.0), (2, 11.0), (3, 12.1), (4, 13.31)],
            "A/X": [(1, 100.0), (3, 50.0), (4, 100.0)],  # no candle at 2 (a gap)
        }
    )
    assert symbols == ["A/X", "B/X"]
    np.testing.assert_allclose(returns, [[-0.5, 0.21], [1.0, 0.1]])
