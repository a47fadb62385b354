"""Accounts: one per venue account, paper, sandbox and live kept apart.

An account's id is the exchange service's venue name ("paper", "binance-live"): each
venue in the exchange service is one venue account, so the two cannot drift apart,
and executions of different venues never mix. The kind is the one ExchangeService.
ListVenues gives the venue, never guessed from its name.

The exchange is the source of truth for what a venue account holds: an account opens
from the venue's holdings (paper: its configured starting balances, before any
execution; sandbox and live: GetBalances at first connect, with the execution sequence
they include), then follows the venue's executions after that point. Holdings other
than the quote currency enter as positions at the mark at opening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class AccountKind(StrEnum):
    PAPER = "paper"
    SANDBOX = "sandbox"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    venue: str
    kind: AccountKind
    quote_currency: str
    create_time: datetime
    # The venue's executions up to this sequence are in the opening holdings already.
    opening_sequence: int = 0
    # The holdings it opened with, as "ASSET=amount,..." (empty for an imported account).
    opening_holdings: str = ""


@dataclass(frozen=True, slots=True)
class OpeningPosition:
    """A holding other than the quote currency, entered at the mark at opening."""

    symbol: str
    quantity: Decimal
    mark: Decimal


@dataclass(frozen=True, slots=True)
class Opening:
    """What a venue account holds when the ledger opens it."""

    venue: str
    kind: AccountKind
    # Totals per asset, zero ones left out.
    holdings: dict[str, Decimal]
    # The last execution sequence the holdings include (0 for paper: none).
    sequence: int = 0
    positions: list[OpeningPosition] = field(default_factory=list)

    @property
    def holdings_text(self) -> str:
        return holdings_text(self.holdings)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A deposit (amount > 0) or withdrawal (< 0) booked from the venue's balances."""

    account_id: str
    asset: str
    amount: Decimal
    # In the quote currency; None for an asset booked as a balance only.
    value: Decimal | None
    time: datetime
    # The venue's last execution sequence when the balances were compared.
    as_of_sequence: int = 0
    # Given when stored (0 before).
    transfer_id: int = 0


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """An account marked to market at one time (services.portfolio.equity)."""

    time: datetime
    equity: Decimal
    cash: Decimal
    # The account's net transfers (deposits minus withdrawals) at that time.
    net_transfers: Decimal = Decimal(0)


def holdings_text(holdings: dict[str, Decimal]) -> str:
    """ "BTC=1,USDT=100000": sorted, plain decimals, for storing and comparing."""
    return ",".join(
        f"{asset}={format(amount.normalize(), 'f')}" for asset, amount in sorted(holdings.items())
    )


def parse_holdings(text: str) -> dict[str, Decimal]:
    """The inverse of holdings_text."""
    holdings = {}
    for entry in filter(None, text.split(",")):
        asset, _, amount = entry.partition("=")
        holdings[asset] = Decimal(amount)
    return holdings
