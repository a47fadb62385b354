"""The risk event fan-out: every subscriber gets every event; one that falls behind is
cut with STREAM_OVERFLOW after the events it holds, and the others lose nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.errors import Aborted
from services.risk.events import RiskEvent, RiskEventType, risk_events


def event(number: int) -> RiskEvent:
    return RiskEvent(RiskEventType.LIMITS_UPDATED, datetime.now(UTC), f"event {number}")


async def test_a_slow_subscriber_is_cut_and_the_others_get_every_event() -> None:
    events = risk_events(queue_size=2)
    async with events.subscribed() as slow, events.subscribed() as keeping_up:
        assert events.subscriber_count == 2
        received = []
        for number in range(1, 6):
            events.publish(event(number))
            received.append((await anext(keeping_up)).message)
        assert received == [f"event {n}" for n in range(1, 6)]
        # The slow one gets what it held, then the end of its stream: nothing skipped.
        assert [(await anext(slow)).message for _ in range(2)] == ["event 1", "event 2"]
        with pytest.raises(Aborted) as raised:
            await anext(slow)
        assert raised.value.reason == "STREAM_OVERFLOW"
        assert "GetTradingState" in str(raised.value)
        assert events.subscriber_count == 1
    assert events.subscriber_count == 0
