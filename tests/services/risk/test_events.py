"""The event hub: every subscriber gets every event; a slow one loses its oldest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.risk.events import EventHub, RiskEvent, RiskEventType


def event(number: int) -> RiskEvent:
    return RiskEvent(RiskEventType.LIMITS_UPDATED, datetime.now(UTC), f"event {number}")


async def test_each_subscriber_gets_every_event_and_a_slow_one_loses_the_oldest() -> None:
    hub = EventHub(queue_size=2)
    first, second = hub.subscribe(), hub.subscribe()
    reads = [asyncio.ensure_future(anext(first)), asyncio.ensure_future(anext(second))]
    await asyncio.sleep(0)  # both subscribed
    assert hub.subscriber_count == 2
    hub.publish(event(1))
    assert [(await read).message for read in reads] == ["event 1", "event 1"]
    for number in (2, 3, 4):
        hub.publish(event(number))  # nobody reads: the queues hold two
    assert (await anext(first)).message == "event 3"
    assert (await anext(first)).message == "event 4"
    await first.aclose()
    await second.aclose()
    assert hub.subscriber_count == 0
