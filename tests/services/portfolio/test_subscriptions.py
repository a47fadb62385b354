"""A subscriber that falls behind is dropped with ABORTED, after what it was sent."""

from __future__ import annotations

import pytest

from common.errors import Aborted
from services.portfolio.subscriptions import Subscription


async def test_overflow_ends_the_stream_after_the_queued_items() -> None:
    subscription: Subscription[int] = Subscription(capacity=2)
    for item in range(5):
        subscription.offer(item)
    items = subscription.items()
    assert [await anext(items), await anext(items)] == [0, 1]
    with pytest.raises(Aborted) as raised:
        await anext(items)
    assert raised.value.reason == "STREAM_OVERFLOW"
