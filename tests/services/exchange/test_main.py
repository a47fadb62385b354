"""The exchange's lifespan: the paper account and resting orders survive a restart, and
an order a crash left half-placed is resolved."""

from __future__ import annotations

import grpc
import pytest

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import LIMIT, StartExchange, error_info, order

# A buy far below the market: it would rest, locking quote currency.
LIMIT_AT_1000 = {"type": LIMIT, "price": "1000.00"}


async def test_the_paper_account_is_rebuilt_after_a_restart(start_exchange: StartExchange) -> None:
    balances = exchange_pb2.GetBalancesRequest(venue="paper")
    async with start_exchange() as exchange:
        await exchange.stub.SubmitOrder(order(client_order_id="buy", quantity="0.2"))
        bid = exchange.paper.book.best_bid()
        assert bid is not None
        resting = await exchange.stub.SubmitOrder(
            order(client_order_id="rest", type=LIMIT, price=f"{bid[0] - 50:f}")
        )
        before = await exchange.stub.GetBalances(balances)

    async with start_exchange() as exchange:
        after = await exchange.stub.GetBalances(balances)
        canceled = await exchange.stub.CancelOrder(
            exchange_pb2.CancelOrderRequest(order_id=resting.order.order_id)
        )
        released = await exchange.stub.GetBalances(balances)

    assert after == before
    assert any(b.asset == "USDT" and b.locked != "0" for b in after.balances)
    assert canceled.order.status == common_pb2.ORDER_STATUS_CANCELED
    assert all(b.locked == "0" for b in released.balances)


async def test_orders_a_crash_left_pending_new_are_rejected_at_the_next_start(
    start_exchange: StartExchange,
) -> None:
    """kill -9 between storing an order (PENDING_NEW) and recording the venue's answer:
    the paper venue's state died with the process, so the order was never placed."""
    balances = exchange_pb2.GetBalancesRequest(venue="paper")
    async with start_exchange() as exchange:
        before = await exchange.stub.GetBalances(balances)
    # A venue that never answers, then a stop that cancels the submissions mid-way.
    async with start_exchange(EXCHANGE__PAPER__LATENCY_MS="60000") as exchange:
        for client_order_id, kind in (("crash-market", {}), ("crash-limit", LIMIT_AT_1000)):
            with pytest.raises(grpc.aio.AioRpcError) as lost:
                await exchange.stub.SubmitOrder(
                    order(client_order_id=client_order_id, **kind), timeout=0.5
                )
            assert lost.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    async with start_exchange() as exchange:
        for client_order_id, kind in (("crash-market", {}), ("crash-limit", LIMIT_AT_1000)):
            found = await exchange.stub.GetOrder(
                exchange_pb2.GetOrderRequest(venue="paper", client_order_id=client_order_id)
            )
            assert found.order.status == common_pb2.ORDER_STATUS_REJECTED
            assert list(found.order.reject_reasons) == ["EXCHANGE_RESTARTED"]
            with pytest.raises(grpc.aio.AioRpcError) as again:
                await exchange.stub.SubmitOrder(order(client_order_id=client_order_id, **kind))
            assert again.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_info(again.value).reason == "EXCHANGE_RESTARTED"
        # The limit order was not restored as resting: nothing is locked.
        assert await exchange.stub.GetBalances(balances) == before
