"""What a strategy is: a name, a parameter schema and a vectorized `signals` function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy: the server lists and checks strategies, only workers run them
    from strategies.candles import Candles, FloatArray

ParameterKind = Literal["int", "float", "bool"]
SignalFunction = Callable[..., "FloatArray"]


class UnknownStrategy(LookupError):
    """No built-in or user strategy has that name: see ListStrategies."""


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: ParameterKind
    default: float
    minimum: float
    maximum: float
    description: str = ""

    def check(self, value: float) -> str | None:
        """Why `value` is not acceptable, or None."""
        if not self.minimum <= value <= self.maximum:
            return f"must be within [{self.minimum:g}, {self.maximum:g}], got {value:g}"
        if self.kind in ("int", "bool") and value != int(value):
            return f"must be a whole number, got {value:g}"
        return None

    def convert(self, value: float) -> float | int | bool:
        if self.kind == "int":
            return int(value)
        if self.kind == "bool":
            return bool(value)
        return float(value)


@dataclass(frozen=True)
class StrategyDefinition:
    name: str
    description: str
    parameters: tuple[Parameter, ...]
    signals: SignalFunction
    user_defined: bool = False
    # Extra checks across parameters (e.g. fast < slow): returns (field, problem) pairs.
    constraints: Callable[[Mapping[str, float]], list[tuple[str, str]]] = field(
        default=lambda _values: []
    )
    # The closed candles of history the strategy needs before its output is right, under
    # the resolved parameters (a live runner loads them before its first decision).
    # Default: twice the largest whole-number parameter, at least 2.
    warmup: Callable[[Mapping[str, float]], int] | None = None

    def warmup_bars(self, values: Mapping[str, float]) -> int:
        """Bars of history this strategy needs under `values` (see `warmup`)."""
        if self.warmup is not None:
            return max(2, int(self.warmup(values)))
        windows = [
            int(values.get(parameter.name, parameter.default))
            for parameter in self.parameters
            if parameter.kind == "int"
        ]
        return max([2, *(2 * window for window in windows)])

    def resolve(self, given: Mapping[str, float]) -> tuple[dict[str, float], list[tuple[str, str]]]:
        """The full parameter set (`given` over the defaults) and what breaks the schema
        (unknown names, values out of range), as (parameter name, description) pairs."""
        known = {parameter.name: parameter for parameter in self.parameters}
        problems = [
            (name, f"{self.name} has no parameter {name!r}") for name in given if name not in known
        ]
        values = {name: given.get(name, parameter.default) for name, parameter in known.items()}
        for name, value in values.items():
            problem = known[name].check(value)
            if problem:
                problems.append((name, problem))
        return values, problems

    def constraint_problems(self, values: Mapping[str, float]) -> list[tuple[str, str]]:
        """What breaks a rule between parameters (e.g. fast < slow)."""
        return self.constraints(values)

    def run(self, candles: Candles, values: Mapping[str, float]) -> FloatArray:
        """The target-position array for `candles` under the resolved `values`."""
        known = {parameter.name: parameter for parameter in self.parameters}
        kwargs = {name: known[name].convert(value) for name, value in values.items()}
        return self.signals(candles, **kwargs)
