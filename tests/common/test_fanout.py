import asyncio

import pytest

from common.errors import Aborted
from common.fanout import Fanout


async def test_every_subscriber_gets_every_item_in_order() -> None:
    fanout: Fanout[int] = Fanout("numbers", "read ListNumbers")
    async with fanout.subscribed() as first, fanout.subscribed() as second:
        for number in range(5):
            fanout.publish(number)
        assert [await anext(first) for _ in range(5)] == list(range(5))
        assert [await anext(second) for _ in range(5)] == list(range(5))
    assert fanout.subscriber_count == 0


async def test_a_subscriber_that_falls_behind_is_cut_after_what_it_holds() -> None:
    fanout: Fanout[int] = Fanout("numbers", "read ListNumbers", queue_size=3)
    async with fanout.subscribed() as slow:
        for number in range(10):  # never blocks, whatever the subscriber does
            fanout.publish(number)
        received = [await anext(slow) for _ in range(3)]
        with pytest.raises(Aborted) as cut:
            await anext(slow)
    assert received == [0, 1, 2]
    assert cut.value.reason == "STREAM_OVERFLOW"
    assert "ListNumbers" in str(cut.value)
    assert fanout.subscriber_count == 0


async def test_a_cut_subscriber_does_not_disturb_the_others() -> None:
    fanout: Fanout[int] = Fanout("numbers", "read ListNumbers", queue_size=2)
    async with fanout.subscribed() as slow, fanout.subscribed() as quick:
        fanout.publish(1)
        assert await anext(quick) == 1
        fanout.publish(2)
        assert await anext(quick) == 2
        fanout.publish(3)  # slow now holds 1, 2: cut here
        assert await anext(quick) == 3
        assert [await anext(slow), await anext(slow)] == [1, 2]
        with pytest.raises(Aborted):
            await anext(slow)


async def test_accept_filters_per_subscriber() -> None:
    fanout: Fanout[int] = Fanout("numbers", "read ListNumbers")
    async with fanout.subscribed(accept=lambda number: number % 2 == 0) as evens:
        for number in range(6):
            fanout.publish(number)
        assert [await anext(evens) for _ in range(3)] == [0, 2, 4]


async def test_subscribe_waits_for_items_published_later() -> None:
    fanout: Fanout[str] = Fanout("words", "read ListWords")
    async with fanout.subscribed() as words:
        waiting = asyncio.ensure_future(anext(words))
        await asyncio.sleep(0)
        fanout.publish("late")
        assert await waiting == "late"


async def test_batches_hold_what_waited_in_order_up_to_the_limit() -> None:
    fanout: Fanout[int] = Fanout("numbers", "read ListNumbers")
    async with fanout.subscribed_in_batches(3, accept=lambda n: n != 4) as batches:
        for number in range(8):
            fanout.publish(number)
        received = [await anext(batches) for _ in range(3)]
        # A quiet stream: one item goes alone, nobody waits to fill a batch.
        fanout.publish(8)
        alone = await anext(batches)
    assert received == [[0, 1, 2], [3, 5], [6, 7]]
    assert alone == [8]
    assert fanout.subscriber_count == 0


async def test_a_batch_subscriber_that_falls_behind_gets_what_it_holds_then_the_cut() -> None:
    fanout: Fanout[int] = Fanout("numbers", "read ListNumbers", queue_size=3)
    async with fanout.subscribed_in_batches(10) as batches:
        for number in range(5):
            fanout.publish(number)
        held = await anext(batches)
        with pytest.raises(Aborted) as cut:
            await anext(batches)
    assert held == [0, 1, 2]
    assert cut.value.reason == "STREAM_OVERFLOW"
