"""VaR and CVaR from real returns, against numpy and the closed-form normal figures
computed here independently; Monte Carlo in chunks against the same paths computed in
one shot, in memory that does not grow with the paths; returns aligned on shared
timestamps."""

from __future__ import annotations

import gzip
import json
import math
import random
import tracemalloc
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from services.risk.var import (
    MonteCarlo,
    Returns,
    VarMethod,
    aligned_returns,
    compute_var,
    percentile_loss,
)

DATA = Path(__file__).resolve().parent / "data" / "freqtrade_5m_eth_ltc_btc.json.gz"


@pytest.fixture(scope="module")
def both_returns() -> Returns:
    """600 returns of ETH/BTC and LTC/BTC (columns in that order)."""
    with gzip.open(DATA, "rt") as file:
        rows = json.load(file)
    return aligned_returns(
        {symbol: [(int(row[0]) // 1000, row[4]) for row in rows[symbol]] for symbol in rows}
    )


@pytest.fixture(scope="module")
def eth_returns(both_returns: Returns) -> Returns:
    return Returns(both_returns.symbols[:1], both_returns.columns[:1])


def test_historical_var_is_the_loss_percentile(eth_returns: Returns) -> None:
    losses = -np.array(eth_returns.columns[0]) * 2.0  # 2 BTC of ETH
    expected = np.percentile(losses, 99)
    result = compute_var(VarMethod.HISTORICAL, eth_returns, [2.0], 0.99, 1)
    assert result.value_at_risk == pytest.approx(expected, rel=1e-12)
    assert result.conditional_value_at_risk == pytest.approx(
        losses[losses >= expected].mean(), rel=1e-12
    )
    assert result.observations == 600
    assert result.conditional_value_at_risk >= result.value_at_risk > 0


@pytest.mark.parametrize("count", [2, 3, 31, 600])
@pytest.mark.parametrize("confidence", [0.5, 0.95, 0.99])
def test_the_max_var_rules_percentile_is_numpys(
    both_returns: Returns, count: int, confidence: float
) -> None:
    returns = Returns(both_returns.symbols, [column[:count] for column in both_returns.columns])
    losses = -(np.array(returns.columns).T @ np.array([1.1, -0.4]))
    expected = np.percentile(losses, confidence * 100)
    assert percentile_loss(returns, [1.1, -0.4], confidence) == pytest.approx(expected, rel=1e-12)


def test_parametric_var_is_the_closed_form_normal(eth_returns: Returns) -> None:
    pnl = np.array(eth_returns.columns[0]) * -3.0  # short 3 BTC of ETH
    mu, sigma = pnl.mean(), pnl.std(ddof=1)
    z = NormalDist().inv_cdf(0.025)
    result = compute_var(VarMethod.PARAMETRIC, eth_returns, [-3.0], 0.975, 4)
    assert result.value_at_risk == pytest.approx(-(4 * mu + 2 * sigma * z), rel=1e-9)
    assert result.conditional_value_at_risk == pytest.approx(
        2 * sigma * NormalDist().pdf(z) / 0.025 - 4 * mu, rel=1e-9
    )


def test_monte_carlo_converges_to_the_normal_figure_and_repeats_under_a_seed(
    eth_returns: Returns,
) -> None:
    normal = compute_var(VarMethod.PARAMETRIC, eth_returns, [1.0], 0.99, 1)
    simulated = compute_var(
        VarMethod.MONTE_CARLO, eth_returns, [1.0], 0.99, 1, simulations=200_000, seed=3
    )
    assert simulated.value_at_risk == pytest.approx(normal.value_at_risk, rel=0.03)
    assert simulated.conditional_value_at_risk == pytest.approx(
        normal.conditional_value_at_risk, rel=0.03
    )
    again = compute_var(
        VarMethod.MONTE_CARLO, eth_returns, [1.0], 0.99, 1, simulations=200_000, seed=3
    )
    assert again == simulated


def _one_shot(
    returns: Returns, values: list[float], confidence: float, horizon: float, *, n: int, seed: int
) -> tuple[float, float]:
    """The documented paths, all kept (numpy's covariance, Cholesky and percentile)."""
    matrix = np.array(returns.columns).T
    factor = np.linalg.cholesky(np.atleast_2d(np.cov(matrix, rowvar=False, ddof=1)))
    draws = np.column_stack(
        [
            [stream.gauss() for _ in range(n)]
            for stream in (random.Random(f"{seed}/{j}") for j in range(len(values)))
        ]
    )
    simulated = matrix.mean(axis=0) * horizon + math.sqrt(horizon) * draws @ factor.T
    losses = -(simulated @ np.array(values))
    var = np.percentile(losses, confidence * 100)
    return float(var), float(losses[losses >= var].mean())


@pytest.mark.parametrize(
    ("confidence", "chunk", "bracket_errors"),
    [
        (0.99, 4096, 10.0),
        (0.95, 1000, 10.0),  # many chunks, the last one short
        (0.5, 7, 10.0),
        (0.99, 1000, 1e-9),  # a bracket too narrow: widened, the same paths drawn again
    ],
)
def test_monte_carlo_in_chunks_equals_the_same_paths_kept_in_full(
    both_returns: Returns, confidence: float, chunk: int, bracket_errors: float
) -> None:
    values = [1.5, -2.0]  # long ETH, short LTC
    expected = _one_shot(both_returns, values, confidence, 12, n=20_000, seed=11)
    run = MonteCarlo(
        both_returns,
        values,
        confidence,
        12,
        simulations=20_000,
        seed=11,
        chunk=chunk,
        bracket_errors=bracket_errors,
    )
    for _ in run.chunks():
        pass
    assert run.result is not None
    assert run.result.value_at_risk == pytest.approx(expected[0], rel=1e-12)
    assert run.result.conditional_value_at_risk == pytest.approx(expected[1], rel=1e-12)


def _peak_bytes(returns: Returns, simulations: int) -> int:
    tracemalloc.start()
    try:
        compute_var(
            VarMethod.MONTE_CARLO, returns, [1.0, 1.0], 0.5, 1, simulations=simulations, seed=1
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_monte_carlo_memory_does_not_grow_with_the_paths(both_returns: Returns) -> None:
    # At 50% confidence keeping the tail would keep half the losses: 8 bytes each at
    # least, 800 KB for 200,000 paths.
    small, large = _peak_bytes(both_returns, 20_000), _peak_bytes(both_returns, 200_000)
    assert large - small < 200_000


def test_monte_carlo_of_perfectly_correlated_or_still_symbols(both_returns: Returns) -> None:
    eth = both_returns.columns[0]
    twice = Returns(["A/X", "B/X"], [eth, eth])  # a singular covariance
    one = Returns(["A/X"], [eth])
    doubled = compute_var(VarMethod.MONTE_CARLO, twice, [1.0, 1.0], 0.99, 1, seed=2)
    single = compute_var(VarMethod.MONTE_CARLO, one, [2.0], 0.99, 1, seed=2)
    assert doubled.value_at_risk == pytest.approx(single.value_at_risk, rel=1e-9)

    still = Returns(["A/X"], [[0.0] * 50])
    flat = compute_var(VarMethod.MONTE_CARLO, still, [5.0], 0.99, 1)
    assert (flat.value_at_risk, flat.conditional_value_at_risk) == (0.0, 0.0)


def test_no_position_no_risk(eth_returns: Returns) -> None:
    for method in VarMethod:
        result = compute_var(method, eth_returns, [0.0], 0.99, 1)
        assert (result.value_at_risk, result.conditional_value_at_risk) == (0.0, 0.0)


def test_returns_are_aligned_on_the_timestamps_every_symbol_has() -> None:
    returns = aligned_returns(
        {
            "B/X": [(1, 10.0), (2, 11.0), (3, 12.1), (4, 13.31)],
            "A/X": [(1, 100.0), (3, 50.0), (4, 100.0)],  # no candle at 2 (a gap)
        }
    )
    assert returns.symbols == ["A/X", "B/X"]
    assert returns.observations == 2
    np.testing.assert_allclose(np.array(returns.columns).T, [[-0.5, 0.21], [1.0, 0.1]])
