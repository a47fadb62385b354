"""Strategies: the built-ins and user modules, behind one small vectorized interface.

A strategy is a function `signals(candles, **parameters) -> target` returning, per bar,
the position wanted after that bar's close: +1 long, -1 short, 0 flat, NaN "no change".
The bar engine trades only where the wanted position changes (see bars/engine.py).
"""

from strategies.base import Parameter, StrategyDefinition, UnknownStrategy

__all__ = ["Parameter", "StrategyDefinition", "UnknownStrategy"]
