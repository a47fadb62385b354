"""Value at risk and expected shortfall of a portfolio, from candle returns (numpy).

The portfolio's PnL over one candle is sum(value_s * return_s) over its symbols, with
simple returns of the close on the timestamps every symbol shares. Losses are positive.

- historical: the `confidence` percentile of the past PnL losses (numpy's linear
  interpolation); CVaR is the mean of the losses at or beyond it.
- parametric: normal with the sample mean and standard deviation of the PnL:
  VaR = -(mu + sigma * z), CVaR = sigma * pdf(z) / (1 - c) - mu, z = Phi^-1(1 - c).
- Monte Carlo: `simulations` draws of the returns from a multivariate normal with the
  sample mean and covariance (seeded), then as historical.

A horizon of k candles scales the one-candle figures: the mean by k, the spread by
sqrt(k) (square-root-of-time; historical figures are multiplied by sqrt(k)).
This module imports numpy: import it lazily, only where VaR is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class VarMethod(Enum):
    HISTORICAL = 1
    PARAMETRIC = 2
    MONTE_CARLO = 3


@dataclass(frozen=True)
class VarResult:
    value_at_risk: float
    conditional_value_at_risk: float
    observations: int


def aligned_returns(closes: dict[str, list[tuple[int, float]]]) -> tuple[list[str], FloatArray]:
    """Simple returns (rows: candles, columns: symbols) on the timestamps all symbols share."""
    symbols = sorted(closes)
    if not symbols:
        return [], np.empty((0, 0))
    shared = set.intersection(*({t for t, _ in closes[s]} for s in symbols))
    times = sorted(shared)
    prices = np.array(
        [[dict(closes[s])[t] for s in symbols] for t in times], dtype=np.float64
    ).reshape(len(times), len(symbols))
    if len(times) < 2:
        return symbols, np.empty((0, len(symbols)))
    return symbols, prices[1:] / prices[:-1] - 1.0


def vector(values: list[float]) -> FloatArray:
    return np.array(values, dtype=np.float64)


def compute_var(
    method: VarMethod,
    returns: FloatArray,
    values: FloatArray,
    confidence: float,
    horizon_candles: float,
    *,
    simulations: int = 10_000,
    seed: int = 0,
) -> VarResult:
    """VaR and CVaR of positions worth `values` (quote currency, signed) over the horizon."""
    observations = int(returns.shape[0])
    if observations < 2 or not np.any(values):
        return VarResult(0.0, 0.0, observations)
    if method is VarMethod.PARAMETRIC:
        pnl = returns @ values
        return _normal(
            float(pnl.mean()), float(pnl.std(ddof=1)), confidence, horizon_candles, observations
        )
    if method is VarMethod.MONTE_CARLO:
        rng = np.random.default_rng(seed)
        mean = returns.mean(axis=0) * horizon_candles
        covariance = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1)) * horizon_candles
        simulated = rng.multivariate_normal(mean, covariance, size=simulations, method="cholesky")
        var, cvar = _tail(-(simulated @ values), confidence)
        return VarResult(var, cvar, observations)
    var, cvar = _tail(-(returns @ values), confidence)
    scale = math.sqrt(horizon_candles)
    return VarResult(var * scale, cvar * scale, observations)


def percentile_loss(returns: FloatArray, values: list[float], confidence: float) -> float:
    """The `confidence` percentile of the PnL losses of `values` over `returns` (historical)."""
    if returns.shape[0] < 2:
        return 0.0
    return float(np.percentile(-(returns @ np.asarray(values)), confidence * 100.0))


def _tail(losses: FloatArray, confidence: float) -> tuple[float, float]:
    var = float(np.percentile(losses, confidence * 100.0))
    return var, float(losses[losses >= var].mean())


def _normal(
    mean: float, deviation: float, confidence: float, horizon: float, observations: int
) -> VarResult:
    mu, sigma = mean * horizon, deviation * math.sqrt(horizon)
    z = NormalDist().inv_cdf(1.0 - confidence)
    var = -(mu + sigma * z)
    cvar = sigma * NormalDist().pdf(z) / (1.0 - confidence) - mu
    return VarResult(var, cvar, observations)


def simulation_bytes(simulations: int, symbols: int) -> int:
    """Memory a Monte Carlo run needs at its peak (draws, their product, the losses)."""
    return simulations * (symbols * 3 + 2) * 8
