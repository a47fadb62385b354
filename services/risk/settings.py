"""The risk service's own settings: `[risk.feeds]`, `[risk.limits]` and `[risk.var]` in
configs/default.toml, parsed at start (a bad value stops the start naming the key)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FeedSettings:
    # The venue account the limits apply to: its markets, tickers and orders on the
    # exchange, and its positions and cash in the portfolio.
    venue: str = "paper"
    account_id: str = "paper"
    # Wait between attempts to reach a peer whose stream ended or failed.
    retry_seconds: float = 1.0
    # Cash and equity are re-read from the portfolio this often (fees, transfers).
    portfolio_refresh_seconds: float = 5.0
    # Deadline of each snapshot RPC to a peer.
    rpc_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class DefaultLimits:
    """The limits of a fresh install, until UpdateLimits stores others. Empty or 0: none."""

    allowed_symbols: tuple[str, ...] = ()
    min_order_notional: str = ""
    max_order_notional: str = ""
    max_position_quantity: str = ""
    max_position_notional: str = ""
    max_gross_exposure: str = ""
    max_leverage: str = ""
    max_open_orders: int = 0
    max_orders_per_second: int = 0
    max_orders_per_minute: int = 0
    max_price_deviation: str = ""
    daily_loss_limit: str = ""
    max_drawdown: str = ""
    loss_cooldown_trades: int = 0
    loss_cooldown_seconds: float = 0.0
    max_var: str = ""


@dataclass(frozen=True)
class VarSettings:
    # Candles of the returns behind the max_var rule and ComputeVaR's default.
    timeframe: str = "1h"
    lookback: int = 500
    # How often the max_var rule's return history is re-read from the exchange.
    refresh_seconds: float = 300.0
    # Monte Carlo paths at most (each costs 8 bytes per symbol, a few times over).
    max_simulations: int = 1_000_000


@dataclass(frozen=True)
class RiskSettings:
    feeds: FeedSettings = field(default_factory=FeedSettings)
    limits: DefaultLimits = field(default_factory=DefaultLimits)
    var: VarSettings = field(default_factory=VarSettings)
