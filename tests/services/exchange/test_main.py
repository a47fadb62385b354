"""The exchange's lifespan: the paper account and resting orders survive a restart."""

from __future__ import annotations

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import LIMIT, StartExchange, order


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
