"""The strategy service's own settings: `[strategy.runners]` in configs/default.toml.

Each field's bounds are declared in its type and enforced by `parse_settings`: a bad
value stops the start naming its key (`config error: strategy.runners.max_runners: ...`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.config import NonNegativeFloat, PositiveFloat, PositiveInt, parse_settings

if TYPE_CHECKING:
    from common.service import Runtime


@dataclass(frozen=True)
class RunnerSettings:
    # A runner on a live venue needs this true (and `confirm_live` equal to the venue's name).
    allow_live: bool = False
    # User strategy modules (*.py, absolute path); empty: built-ins only. Point it at the
    # same directory as `backtest.jobs.strategies_dir` so both run the same code.
    strategies_dir: str = ""
    # Runners that may exist at once (each holds its candle history in memory).
    max_runners: PositiveInt = 20
    # Deadline of each RPC to a peer (exchange, backtest).
    rpc_timeout_seconds: PositiveFloat = 5.0
    # How long a decision waits for its order to be final and its fills applied.
    settle_seconds: PositiveFloat = 10.0
    # The runner's loop marks a heartbeat this often while it waits for candles.
    heartbeat_seconds: PositiveFloat = 5.0
    # A candle arriving later than this after its close is logged as late (0: any delay).
    late_after_seconds: NonNegativeFloat = 30.0


@dataclass(frozen=True)
class StrategySettings:
    runners: RunnerSettings = field(default_factory=RunnerSettings)


def load_settings(runtime: Runtime) -> StrategySettings:
    """Parses `[strategy.*]`; a bad value raises ConfigError naming the key."""
    return parse_settings(StrategySettings, runtime.settings.extensions, "strategy.")
