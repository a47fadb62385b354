"""The risk service's own settings: `[risk.feeds]`, `[risk.limits]` and `[risk.var]` in
configs/default.toml, parsed at start (a bad value stops the start naming the key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from common import timeframes
from common.config import (
    AtLeast,
    ConfigError,
    NonNegativeFloat,
    NotEmpty,
    OneOf,
    PositiveFloat,
    parse_settings,
)
from services.risk.limits import RawLimits

if TYPE_CHECKING:
    from common.service import Runtime


@dataclass(frozen=True)
class FeedSettings:
    # Every venue the exchange lists is a venue account risk checks, with its own book,
    # limits and trading state. This one is what ComputeVaR, RunStressTest and a
    # CheckOrder without a venue mean when they name no account.
    account_id: Annotated[str, NotEmpty()] = "paper"
    # How often the exchange's venues are listed again (a venue added is picked up).
    venues_refresh_seconds: PositiveFloat = 30.0
    # Health says NOT_SERVING until every account has synced once, or this long at most
    # (a venue that cannot be reached must not keep the others from trading: its own
    # orders stay denied RISK_STATE_STALE). 0: serve at once (risk alone, the bench).
    ready_timeout_seconds: NonNegativeFloat = 60.0
    # Wait between attempts to reach a peer whose stream ended or failed.
    retry_seconds: PositiveFloat = 1.0
    # Cash and equity are re-read from the portfolio this often (fees, transfers).
    portfolio_refresh_seconds: PositiveFloat = 5.0
    # Deadline of each snapshot RPC to a peer.
    rpc_timeout_seconds: PositiveFloat = 5.0


@dataclass(frozen=True)
class VarSettings:
    # Candles of the returns behind the max_var rule and ComputeVaR's default.
    # Fixed-length timeframes only: returns need evenly spaced closes.
    timeframe: Annotated[str, OneOf(tuple(timeframes.FIXED_MS))] = "1h"
    lookback: Annotated[int, AtLeast(2)] = 500
    # Fewer returns than this and VaR is not estimated: ComputeVaR answers
    # FAILED_PRECONDITION (VAR_INSUFFICIENT_HISTORY) and the max_var rule denies.
    min_observations: Annotated[int, AtLeast(2)] = 30
    # How often the max_var rule's return history is re-read from the exchange.
    refresh_seconds: PositiveFloat = 300.0
    # Monte Carlo paths at most (memory stays bounded; time grows with the paths).
    max_simulations: Annotated[int, AtLeast(100)] = 1_000_000


@dataclass(frozen=True)
class RiskSettings:
    feeds: FeedSettings = field(default_factory=FeedSettings)
    # The limits of a fresh install, until UpdateLimits stores others. Empty or 0: none.
    limits: RawLimits = field(default_factory=RawLimits)
    var: VarSettings = field(default_factory=VarSettings)


def load_settings(runtime: Runtime) -> RiskSettings:
    """Parses `[risk.*]`; a bad value raises ConfigError naming the key."""
    settings = parse_settings(RiskSettings, runtime.settings.extensions, "risk.")
    if settings.var.lookback < settings.var.min_observations:
        raise ConfigError("risk.var.lookback", "must be at least risk.var.min_observations")
    return settings
