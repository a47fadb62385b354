"""Risk events (denials, breaches, state and limit changes) and their fan-out.

`EventHub.publish` never blocks and never awaits, so the hot path can publish a
denial: each subscriber has a bounded queue, and a subscriber too slow to keep up
loses its oldest events rather than slowing CheckOrder down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from services.risk.rules import Violation
from services.risk.trading_state import TradingStateChange

log = logging.getLogger("edgequant.risk.events")

QUEUE_SIZE = 1024


class RiskEventType(Enum):
    ORDER_DENIED = 1
    LIMIT_BREACHED = 2
    TRADING_STATE_CHANGED = 3
    LIMITS_UPDATED = 4
    ORDER_OUTCOME_UNKNOWN = 5


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


@dataclass
class EventHub:
    queue_size: int = QUEUE_SIZE
    _subscribers: set[asyncio.Queue[RiskEvent]] = field(default_factory=set)

    def publish(self, event: RiskEvent) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
                log.warning("risk event subscriber is too slow: oldest event dropped")
            queue.put_nowait(event)

    async def subscribe(self) -> AsyncGenerator[RiskEvent, None]:
        """Every event published from now on, until the caller stops iterating."""
        queue: asyncio.Queue[RiskEvent] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
