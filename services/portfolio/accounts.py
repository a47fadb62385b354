"""Accounts: one per venue account, paper, sandbox and live kept apart.

An account's id is the exchange service's venue name ("paper", "binance-live"): each
venue in the exchange service is one venue account, so the two cannot drift apart,
and executions of different venues never mix. The kind follows the venue's name
the way the exchange names them (DESIGN.md: "paper" is the default venue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


def kind_of_venue(venue: str) -> AccountKind:
    """PAPER for "paper*", SANDBOX for names with "sandbox" or "testnet", else LIVE.

    Unknown names count as LIVE: a real-money account is never mistaken for paper.
    """
    name = venue.lower()
    if name.startswith("paper"):
        return AccountKind.PAPER
    if "sandbox" in name or "testnet" in name:
        return AccountKind.SANDBOX
    return AccountKind.LIVE
