"""The strategy service's own settings: `[strategy.runners]` in configs/default.toml,
parsed at start (a bad value stops the start naming the key)."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError


@dataclass(frozen=True)
class RunnerSettings:
    # A runner on a live venue needs this true (and `confirm_live` equal to the venue's name).
    allow_live: bool = False
    # User strategy modules (*.py, absolute path); empty: built-ins only. Point it at the
    # same directory as `backtest.jobs.strategies_dir` so both run the same code.
    strategies_dir: str = ""
    # Runners that may exist at once (each holds its candle history in memory).
    max_runners: int = 20
    # Deadline of each RPC to a peer (exchange, backtest).
    rpc_timeout_seconds: float = 5.0
    # How long a decision waits for its order to be final and its fills applied.
    settle_seconds: float = 10.0
    # The runner's loop marks a heartbeat this often while it waits for candles.
    heartbeat_seconds: float = 5.0
    # A candle arriving later than this after its close is logged as late.
    late_after_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_runners < 1:
            raise ConfigError("strategy.runners.max_runners", "must be at least 1")
        for name in ("rpc_timeout_seconds", "settle_seconds", "heartbeat_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"strategy.runners.{name}", "must be greater than 0")


@dataclass(frozen=True)
class StrategySettings:
    runners: RunnerSettings = field(default_factory=RunnerSettings)
