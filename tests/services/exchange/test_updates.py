"""StreamOrderUpdates: every change of every order, as it happens."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest

from common.errors import Aborted
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from services.exchange.orders import Order, OrderStatus, OrderType, Side, TimeInForce
from services.exchange.updates import OrderUpdates
from tests.services.exchange.exchange_testing import Exchange, order


async def test_an_order_is_streamed_through_each_status(exchange: Exchange) -> None:
    stream = exchange.stub.StreamOrderUpdates(exchange_pb2.StreamOrderUpdatesRequest(venue="paper"))
    await _subscribed(exchange)  # before the order goes in

    placed = await exchange.stub.SubmitOrder(order(client_order_id="u1"))
    updates = []
    for _ in range(2):
        message = await asyncio.wait_for(stream.read(), timeout=10)
        assert isinstance(message, exchange_pb2.StreamOrderUpdatesResponse)
        updates.append(message.order)
    stream.cancel()

    assert [u.status for u in updates] == [
        common_pb2.ORDER_STATUS_PENDING_NEW,
        common_pb2.ORDER_STATUS_FILLED,
    ]
    assert {u.order_id for u in updates} == {placed.order.order_id}
    assert updates[-1].filled_quantity == "0.01"


async def test_with_max_batch_an_order_and_its_fill_come_in_one_message(
    exchange: Exchange,
) -> None:
    stream = exchange.stub.StreamOrderUpdates(
        exchange_pb2.StreamOrderUpdatesRequest(venue="paper", max_batch=4)
    )
    await _subscribed(exchange)

    placed = await asyncio.gather(
        *(exchange.stub.SubmitOrder(order(client_order_id=f"b{n}")) for n in range(5))
    )
    messages: list[exchange_pb2.StreamOrderUpdatesResponse] = []
    while sum(len(m.orders) for m in messages) < 10:  # each order: PENDING_NEW, FILLED
        message = await asyncio.wait_for(stream.read(), timeout=10)
        assert isinstance(message, exchange_pb2.StreamOrderUpdatesResponse)
        messages.append(message)
    stream.cancel()

    assert all(not m.HasField("order") and 1 <= len(m.orders) <= 4 for m in messages)
    updates = [update for m in messages for update in m.orders]
    for submitted in placed:
        statuses = [u.status for u in updates if u.order_id == submitted.order.order_id]
        assert statuses == [common_pb2.ORDER_STATUS_PENDING_NEW, common_pb2.ORDER_STATUS_FILLED]
    # A paper market order is approved, placed and filled in one go: both its updates
    # were waiting together, so fewer messages than updates.
    assert len(messages) < len(updates)


async def test_a_batch_gathers_what_is_published_after_its_first_update() -> None:
    # Long enough for every publication below to land while the first one waits.
    updates = OrderUpdates(gather_seconds=1.0)
    follower = updates.follow_in_batches(100, venue="paper")
    first = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0)  # the follower registers at its first read
    for name in ("o1", "o2", "o3"):
        updates.publish(_order(name))
        await asyncio.sleep(0)  # sent at once, each would have been a batch of its own
    batch = await first
    await follower.aclose()

    assert [o.client_order_id for o in batch] == ["o1", "o2", "o3"]
    assert updates.subscriber_count == 0


async def test_a_subscriber_behind_gets_its_full_batches_without_pause() -> None:
    # A gathering time no test would wait out: only full batches can come.
    updates = OrderUpdates(gather_seconds=3600)
    follower = updates.follow_in_batches(2)
    first = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0)
    for number in range(4):
        updates.publish(_order(f"o{number}"))

    batches = [await asyncio.wait_for(first, timeout=10)]
    batches.append(await asyncio.wait_for(anext(follower), timeout=10))
    await follower.aclose()

    assert [[o.client_order_id for o in batch] for batch in batches] == [
        ["o0", "o1"],
        ["o2", "o3"],
    ]


async def test_a_negative_max_batch_is_refused(exchange: Exchange) -> None:
    stream = exchange.stub.StreamOrderUpdates(
        exchange_pb2.StreamOrderUpdatesRequest(venue="paper", max_batch=-1)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream.read()
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "max_batch" in (refused.value.details() or "")


async def test_a_subscriber_that_falls_behind_is_cut_with_stream_overflow() -> None:
    updates = OrderUpdates(queue_size=2)
    follower = updates.follow()
    first = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0)  # the follower registers at its first read
    assert updates.subscriber_count == 1
    orders = [_order(f"o{number}") for number in range(4)]
    for placed in orders:
        updates.publish(placed)

    received = [(await first).client_order_id, (await anext(follower)).client_order_id]
    with pytest.raises(Aborted) as raised:
        await anext(follower)
    # What it held before the cut, in order; then the cut, never a silent gap.
    assert received == ["o0", "o1"]
    assert raised.value.reason == "STREAM_OVERFLOW"
    assert "ListOrders" in raised.value.message
    assert updates.subscriber_count == 0


async def test_an_update_is_a_snapshot_of_the_order_when_published() -> None:
    updates = OrderUpdates()
    follower = updates.follow(venue="paper")
    first = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0)
    placed = _order("o1")
    updates.publish(placed)
    placed.status = OrderStatus.FILLED  # the order flow goes on changing its object
    updates.publish(replace(placed, venue="elsewhere"))  # another venue: not followed
    updates.publish(placed)

    assert (await first).status is OrderStatus.PENDING_NEW
    assert (await anext(follower)).status is OrderStatus.FILLED
    await follower.aclose()
    assert updates.subscriber_count == 0


def _order(client_order_id: str) -> Order:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    return Order(
        order_id=f"id-{client_order_id}",
        client_order_id=client_order_id,
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        time_in_force=TimeInForce.GTC,
        quantity=Decimal("0.01"),
        price=None,
        post_only=False,
        reduce_only=False,
        status=OrderStatus.PENDING_NEW,
        create_time=now,
        update_time=now,
    )


async def _subscribed(exchange: Exchange) -> None:
    for _ in range(1000):
        if exchange.servicer.updates.subscriber_count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("StreamOrderUpdates never subscribed")
