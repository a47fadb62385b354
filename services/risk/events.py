"""Risk events (denials, breaches, state and limit changes) and their fan-out.

The stream carries HALTED to the exchange, so no event may vanish: publishing never
blocks the hot path (common.fanout), and a subscriber too slow to keep up has its
stream ended with ABORTED STREAM_OVERFLOW; it re-reads GetTradingState and subscribes
again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from common.fanout import DEFAULT_QUEUE_SIZE, Fanout
from services.risk.rules import Violation
from services.risk.trading_state import TradingStateChange


class RiskEventType(StrEnum):
    ORDER_DENIED = "order_denied"
    LIMIT_BREACHED = "limit_breached"
    TRADING_STATE_CHANGED = "trading_state_changed"
    LIMITS_UPDATED = "limits_updated"
    ORDER_OUTCOME_UNKNOWN = "order_outcome_unknown"


@dataclass(frozen=True)
class RiskEvent:
    type: RiskEventType
    time: datetime
    message: str
    violations: tuple[Violation, ...] = ()
    order_id: str = ""
    client_order_id: str = ""
    trading_state: TradingStateChange | None = None
    # The venue account it concerns; '' for the global kill switch and defaults.
    account_id: str = ""


RiskEvents = Fanout[RiskEvent]


def risk_events(queue_size: int = DEFAULT_QUEUE_SIZE) -> RiskEvents:
    """The fan-out of the risk events to StreamRiskEvents subscribers."""
    return Fanout("risk event", "read GetTradingState (and GetLimits) again", queue_size=queue_size)
