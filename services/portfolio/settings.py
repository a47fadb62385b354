"""The portfolio service's settings: the `[portfolio.*]` sub-tables of the config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from common.config import ConfigError, parse_settings
from common.service import Runtime


@dataclass(frozen=True)
class LedgerSettings:
    # The currency an account's equity and PnL are expressed in.
    quote_currency: str = "USDT"


@dataclass(frozen=True)
class IngestionSettings:
    # Consume ExchangeService.StreamExecutions at start.
    enabled: bool = True
    # At most this many executions are applied in one transaction.
    max_batch: int = 2000
    # A batch smaller than that waits this long once for more: fewer, larger
    # transactions under load, at most this much latency when idle. 0 turns it off.
    batch_linger_seconds: float = 0.01
    # Reconnection backoff: doubles from initial to max, with jitter.
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 10.0
    # Deadline of ListVenues, GetBalances and GetTicker, asked on each (re)connect to
    # open the venues' accounts.
    rpc_timeout_seconds: float = 2.0
    # Sandbox and live accounts are compared with their venue's balances this often;
    # a difference no fill explains is booked as a transfer (transfers.py). 0: never.
    transfer_check_seconds: float = 60.0


@dataclass(frozen=True)
class MarkSettings:
    # Follow ExchangeService.StreamTickers for the venues of the accounts.
    enabled: bool = True


@dataclass(frozen=True)
class EquitySettings:
    # An equity snapshot of every account is taken this often.
    snapshot_seconds: float = 60.0


@dataclass(frozen=True)
class PortfolioSettings:
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    ingestion: IngestionSettings = field(default_factory=IngestionSettings)
    marks: MarkSettings = field(default_factory=MarkSettings)
    equity: EquitySettings = field(default_factory=EquitySettings)


def load_settings(runtime: Runtime) -> PortfolioSettings:
    """Parses `[portfolio.*]`; a bad value raises ConfigError naming the key."""
    ledger = runtime.settings.extensions.get("ledger")
    if isinstance(ledger, Mapping) and "paper_starting_cash" in ledger:
        raise ConfigError(
            "portfolio.ledger.paper_starting_cash",
            "no longer used: accounts open from the exchange's holdings; set paper's"
            " starting balances once, in [exchange.paper] balances",
        )
    settings = parse_settings(PortfolioSettings, runtime.settings.extensions, "portfolio.")
    for key, value in (
        ("ingestion.max_batch", settings.ingestion.max_batch),
        ("ingestion.backoff_initial_seconds", settings.ingestion.backoff_initial_seconds),
        ("ingestion.backoff_max_seconds", settings.ingestion.backoff_max_seconds),
        ("equity.snapshot_seconds", settings.equity.snapshot_seconds),
    ):
        if value <= 0:
            raise ConfigError(f"portfolio.{key}", "must be greater than 0")
    if settings.ingestion.transfer_check_seconds < 0:
        raise ConfigError("portfolio.ingestion.transfer_check_seconds", "must not be negative")
    if settings.ingestion.batch_linger_seconds < 0:
        raise ConfigError("portfolio.ingestion.batch_linger_seconds", "must not be negative")
    return settings
