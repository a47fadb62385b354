"""The trading state (the kill switch) and its audit record.

ACTIVE: every rule applies. REDUCING: only orders that shrink a position pass.
HALTED: every new order is denied, and the exchange cancels the open ones when it sees
the TRADING_STATE_CHANGED event. Each change is kept with who, when and why.

There is one global switch and one per venue account; an order meets the stricter of
the global one and its account's. HALTED on an account cancels that venue's open
orders only; the global HALTED cancels every venue's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# Who the risk service names as the author of a change it made itself (a breach).
RISK_ACTOR = "risk"


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


# From the state that allows most to the one that allows least.
_STRICTNESS = (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)


@dataclass(frozen=True)
class TradingStateChange:
    state: TradingState
    reason: str
    updated_by: str
    update_time: datetime
    # The venue account it applies to; '' for the global kill switch.
    account_id: str = ""


def initial_state(update_time: datetime, account_id: str = "") -> TradingStateChange:
    """A fresh install trades. `update_time` is when that was established: the first
    start, which stores it (services.risk.engine.load_trading_state)."""
    return TradingStateChange(
        state=TradingState.ACTIVE,
        reason="initial state",
        updated_by=RISK_ACTOR,
        update_time=update_time,
        account_id=account_id,
    )


def strictest(*changes: TradingStateChange) -> TradingStateChange:
    """The change whose state allows least (HALTED over REDUCING over ACTIVE); the first
    of equals, so the global switch names itself when it is as strict as an account."""
    return max(changes, key=lambda change: _STRICTNESS.index(change.state))
