"""The risk service's own settings: `[risk.feeds]`, `[risk.limits]` and `[risk.var]` in
configs/default.toml, parsed at start (a bad value stops the start naming the key)."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError
from services.risk.limits import RawLimits


@dataclass(frozen=True)
class FeedSettings:
    # Every venue the exchange lists is a venue account risk checks, with its own book,
    # limits and trading state. This one is what ComputeVaR, RunStressTest and a
    # CheckOrder without a venue mean when they name no account.
    account_id: str = "paper"
    # How often the exchange's venues are listed again (a venue added is picked up).
    venues_refresh_seconds: float = 30.0
    # Health says NOT_SERVING until every account has synced once, or this long at most
    # (a venue that cannot be reached must not keep the others from trading: its own
    # orders stay denied RISK_STATE_STALE).
    ready_timeout_seconds: float = 60.0
    # Wait between attempts to reach a peer whose stream ended or failed.
    retry_seconds: float = 1.0
    # Cash and equity are re-read from the portfolio this often (fees, transfers).
    portfolio_refresh_seconds: float = 5.0
    # Deadline of each snapshot RPC to a peer.
    rpc_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class VarSettings:
    # Candles of the returns behind the max_var rule and ComputeVaR's default.
    timeframe: str = "1h"
    lookback: int = 500
    # Fewer returns than this and VaR is not estimated: ComputeVaR answers
    # FAILED_PRECONDITION (VAR_INSUFFICIENT_HISTORY) and the max_var rule denies.
    min_observations: int = 30
    # How often the max_var rule's return history is re-read from the exchange.
    refresh_seconds: float = 300.0
    # Monte Carlo paths at most (memory stays bounded; time grows with the paths).
    max_simulations: int = 1_000_000

    def __post_init__(self) -> None:
        if self.min_observations < 2:
            raise ConfigError("risk.var.min_observations", "must be at least 2")
        if self.lookback < self.min_observations:
            raise ConfigError("risk.var.lookback", "must be at least risk.var.min_observations")
        if self.max_simulations < 100:
            raise ConfigError("risk.var.max_simulations", "must be at least 100")


@dataclass(frozen=True)
class RiskSettings:
    feeds: FeedSettings = field(default_factory=FeedSettings)
    # The limits of a fresh install, until UpdateLimits stores others. Empty or 0: none.
    limits: RawLimits = field(default_factory=RawLimits)
    var: VarSettings = field(default_factory=VarSettings)
