"""StreamOrderUpdates: every change of every order, as it happens."""

from __future__ import annotations

import asyncio

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import Exchange, order


async def test_an_order_is_streamed_through_each_status(exchange: Exchange) -> None:
    stream = exchange.stub.StreamOrderUpdates(exchange_pb2.StreamOrderUpdatesRequest(venue="paper"))
    await asyncio.sleep(0.1)  # subscribed before the order goes in

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
