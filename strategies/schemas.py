"""The built-in strategies as the server knows them: name, description, parameters and
checks. Their signals (numpy) are in strategies.builtin, imported at a strategy's first
run, i.e. in a backtest worker: listing and checking strategies never loads numpy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from strategies.base import Parameter, SignalFunction, StrategyDefinition

if TYPE_CHECKING:
    from strategies.candles import Candles, FloatArray


def _builtin(name: str) -> SignalFunction:
    def signals(candles: Candles, **parameters: float) -> FloatArray:
        from strategies import builtin  # noqa: PLC0415 - numpy, worker

        function: SignalFunction = getattr(builtin, name)
        return function(candles, **parameters)

    signals.__name__ = signals.__qualname__ = name
    return signals


def _fast_below_slow(values: Mapping[str, float]) -> list[tuple[str, str]]:
    if values["fast"] >= values["slow"]:
        return [("fast", f"must be less than slow ({values['slow']:g})")]
    return []


def _rsi_bounds(values: Mapping[str, float]) -> list[tuple[str, str]]:
    if values["lower"] >= values["upper"]:
        return [("lower", f"must be less than upper ({values['upper']:g})")]
    return []


BUILTINS: tuple[StrategyDefinition, ...] = (
    StrategyDefinition(
        "buy_and_hold",
        "Long from the first bar to the last.",
        (),
        _builtin("buy_and_hold"),
        warmup=lambda _values: 2,
    ),
    StrategyDefinition(
        "sma_cross",
        "Long when the fast SMA crosses above the slow one; short (or exit) on the cross below.",
        (
            Parameter("fast", "int", 10, 2, 10_000, "fast SMA window, bars"),
            Parameter("slow", "int", 30, 3, 10_000, "slow SMA window, bars"),
        ),
        _builtin("sma_cross"),
        constraints=_fast_below_slow,
        # Windowed: exact once the slow window and the bar before it are full.
        warmup=lambda values: 2 * int(values["slow"]) + 2,
    ),
    StrategyDefinition(
        "ema_cross",
        "Long when the fast EMA crosses above the slow one; short (or exit) on the cross below.",
        (
            Parameter("fast", "int", 12, 2, 10_000, "fast EMA span, bars"),
            Parameter("slow", "int", 26, 3, 10_000, "slow EMA span, bars"),
        ),
        _builtin("ema_cross"),
        constraints=_fast_below_slow,
        # Recursive: the seed's weight decays as (1 - 2/(span+1))**n; 10 spans ~ 1e-9.
        warmup=lambda values: 10 * int(values["slow"]) + 2,
    ),
    StrategyDefinition(
        "rsi_reversion",
        "Long when Wilder's RSI is below `lower`; short (or exit) when it is above `upper`.",
        (
            Parameter("period", "int", 14, 2, 1_000, "RSI period, bars"),
            Parameter("lower", "float", 30, 0, 100, "oversold level"),
            Parameter("upper", "float", 70, 0, 100, "overbought level"),
        ),
        _builtin("rsi_reversion"),
        constraints=_rsi_bounds,
        warmup=lambda values: 20 * int(values["period"]) + 2,
    ),
    StrategyDefinition(
        "bollinger_breakout",
        "Long on a close above the upper Bollinger band; short (or exit) below the lower one.",
        (
            Parameter("window", "int", 20, 2, 10_000, "band window, bars"),
            Parameter("width", "float", 2.0, 0.1, 10.0, "band half-width, standard deviations"),
        ),
        _builtin("bollinger_breakout"),
        warmup=lambda values: 2 * int(values["window"]) + 2,
    ),
    StrategyDefinition(
        "macd",
        "Long when MACD crosses above its signal line; short (or exit) on the cross below.",
        (
            Parameter("fast", "int", 12, 2, 10_000, "fast EMA span, bars"),
            Parameter("slow", "int", 26, 3, 10_000, "slow EMA span, bars"),
            Parameter("signal", "int", 9, 2, 10_000, "signal EMA span, bars"),
        ),
        _builtin("macd"),
        constraints=_fast_below_slow,
        warmup=lambda values: 10 * (int(values["slow"]) + int(values["signal"])) + 2,
    ),
)
