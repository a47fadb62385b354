"""The portfolio service's settings: the `[portfolio.*]` sub-tables of the config.

Each field's bounds are declared in its type and enforced by `parse_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from common.config import (
    ConfigError,
    NonNegativeFloat,
    NotEmpty,
    PositiveFloat,
    PositiveInt,
    parse_settings,
)
from common.service import Runtime


@dataclass(frozen=True)
class LedgerSettings:
    # The currency an account's equity and PnL are expressed in.
    quote_currency: Annotated[str, NotEmpty()] = "USDT"


@dataclass(frozen=True)
class IngestionSettings:
    # Consume ExchangeService.StreamExecutions at start.
    enabled: bool = True
    # At most this many executions are applied in one transaction.
    max_batch: PositiveInt = 2000
    # A batch smaller than that waits this long once for more: fewer, larger
    # transactions under load, at most this much latency when idle. 0 turns it off.
    batch_linger_seconds: NonNegativeFloat = 0.01
    # Reconnection backoff: doubles from initial to max, with jitter.
    backoff_initial_seconds: PositiveFloat = 0.2
    backoff_max_seconds: PositiveFloat = 10.0
    # Deadline of ListVenues, GetBalances and GetTicker, asked on each (re)connect to
    # open the venues' accounts.
    rpc_timeout_seconds: PositiveFloat = 2.0
    # Sandbox and live accounts are compared with their venue's balances this often;
    # a difference no fill explains is booked as a transfer (transfers.py). 0: never.
    transfer_check_seconds: NonNegativeFloat = 60.0


@dataclass(frozen=True)
class MarkSettings:
    # Follow ExchangeService.StreamTickers for the venues of the accounts.
    enabled: bool = True


@dataclass(frozen=True)
class EquitySettings:
    # An equity snapshot of every account is taken this often.
    snapshot_seconds: PositiveFloat = 60.0


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
    ingestion = settings.ingestion
    if ingestion.backoff_max_seconds < ingestion.backoff_initial_seconds:
        raise ConfigError(
            "portfolio.ingestion.backoff_max_seconds",
            "must be at least portfolio.ingestion.backoff_initial_seconds",
        )
    return settings
