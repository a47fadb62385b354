"""The strategies a job can name: the built-ins, plus user modules from a directory.

A user strategy is a Python file in the configured `strategies_dir` (only there: code
is never accepted over the API). Its name is the file's stem; it defines

    \"\"\"One line on what it does (the module docstring is its description).\"\"\"
    from strategies import Parameter

    PARAMETERS = [Parameter("lookback", "int", 20, 2, 500, "bars to look back")]

    def warmup(lookback):  # optional: closed candles needed before the output is right
        return 2 * lookback

    def signals(candles, lookback):
        # candles: strategies.candles.Candles (numpy columns)
        # returns a float array as long as candles: +1 long, -1 short, 0 flat, NaN hold
        ...

Files starting with "_" are skipped; a module that fails to load is logged and skipped.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from strategies.base import StrategyDefinition, UnknownStrategy
from strategies.schemas import BUILTINS

log = logging.getLogger("edgequant.backtest.strategies")


class StrategyCatalog:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._strategies = {strategy.name: strategy for strategy in BUILTINS}
        if directory is not None and directory.is_dir():
            for path in sorted(directory.glob("*.py")):
                if path.name.startswith("_") or path.stem in self._strategies:
                    continue
                try:
                    self._strategies[path.stem] = load_user_strategy(path)
                except Exception:
                    log.exception("user strategy skipped", extra={"path": str(path)})

    def __iter__(self) -> Iterator[StrategyDefinition]:
        return iter(self._strategies.values())

    def get(self, name: str) -> StrategyDefinition:
        try:
            return self._strategies[name]
        except KeyError:
            raise UnknownStrategy(name) from None


def load_user_strategy(path: Path) -> StrategyDefinition:
    """Imports one user module and checks that it implements the interface."""
    spec = importlib.util.spec_from_file_location(f"edgequant_user_strategies.{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    signals = getattr(module, "signals", None)
    if not callable(signals):
        raise TypeError(f"{path} defines no signals(candles, **parameters) function")
    return StrategyDefinition(
        name=path.stem,
        description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else "",
        parameters=tuple(getattr(module, "PARAMETERS", ())),
        signals=signals,
        user_defined=True,
        warmup=_user_warmup(getattr(module, "warmup", None)),
    )


def _user_warmup(function: object) -> Callable[[Mapping[str, float]], int] | None:
    if not callable(function):
        return None
    return lambda values: int(function(**values))
