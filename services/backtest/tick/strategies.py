"""The tick engine's strategies (schemas only: this module imports no hftbacktest)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from strategies.base import Parameter, StrategyDefinition

if TYPE_CHECKING:  # numpy: schemas only here
    from strategies.candles import Candles, FloatArray


def _not_vectorized(_candles: Candles, **_parameters: float) -> FloatArray:
    raise TypeError("a tick strategy runs inside hftbacktest, not over candles")


def _grid_rules(values: Mapping[str, float]) -> list[tuple[str, str]]:
    if values["order_quantity"] > values["max_position"]:
        return [("order_quantity", "must not exceed max_position")]
    return []


GRID_MARKET_MAKER = StrategyDefinition(
    "grid_market_maker",
    "Quotes a grid of post-only bids and asks around the mid: the first level half_spread "
    "away, then every grid_spacing, up to `levels` a side; stops adding to a side at "
    "max_position.",
    (
        Parameter("half_spread_bps", "float", 2.0, 0.0, 1_000.0, "first level's distance from mid"),
        Parameter("grid_spacing_bps", "float", 1.0, 0.01, 1_000.0, "distance between levels"),
        Parameter("levels", "int", 5, 1, 50, "levels a side"),
        Parameter("order_quantity", "float", 0.01, 0.0, 1e9, "size of each order (base units)"),
        Parameter("max_position", "float", 0.1, 0.0, 1e9, "absolute position cap (base units)"),
        Parameter("update_interval_ms", "int", 100, 1, 60_000, "requote interval"),
    ),
    _not_vectorized,
    constraints=_grid_rules,
)

TICK_STRATEGIES = {GRID_MARKET_MAKER.name: GRID_MARKET_MAKER}

# hftbacktest's queue position models, by the name a TickSettings.queue_model gives.
QUEUE_MODELS = ("risk_adverse", "power_prob_2", "power_prob_3", "log_prob", "log_prob_2")
