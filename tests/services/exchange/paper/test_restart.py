"""One account over several markets survives a restart: the exchange rebuilds it from the
configured balances and the stored executions of every market, resting orders included."""

from __future__ import annotations

from decimal import Decimal

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import LIMIT, Exchange, StartExchange, order


async def _balances(exchange: Exchange) -> dict[str, tuple[Decimal, Decimal]]:
    response = await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
    return {b.asset: (Decimal(b.free), Decimal(b.locked)) for b in response.balances}


async def test_fills_and_resting_orders_of_every_market_survive_a_restart(
    start_exchange: StartExchange,
) -> None:
    async with start_exchange() as exchange:
        for symbol in ("ETH/USDT", "ADA/USDT"):
            while exchange.paper.paper_markets[symbol].last_trade is None:
                await exchange.paper.advance(1, symbol)
        eth = await exchange.stub.SubmitOrder(
            order(client_order_id="eth", symbol="ETH/USDT", quantity="1.5")
        )
        ada = await exchange.stub.SubmitOrder(
            order(client_order_id="ada", symbol="ADA/USDT", quantity="1000")
        )
        assert eth.order.status == ada.order.status == common_pb2.ORDER_STATUS_FILLED
        # A buy far below ADA's market rests, holding its quote back.
        resting = await exchange.stub.SubmitOrder(
            order(
                client_order_id="ada-rest",
                symbol="ADA/USDT",
                type=LIMIT,
                quantity="100",
                price="0.2",
            )
        )
        assert resting.order.status == common_pb2.ORDER_STATUS_OPEN
        before = await _balances(exchange)
        assert before["ETH"] == (Decimal("1.5"), Decimal(0))
        assert before["ADA"] == (Decimal(1000), Decimal(0))
        assert before["USDT"][1] == Decimal("100") * Decimal("0.2") * Decimal("1.001")
    async with start_exchange() as restarted:
        assert await _balances(restarted) == before
        assert [(o.symbol, o.remaining) for o in restarted.paper.resting.values()] == [
            ("ADA/USDT", Decimal(100))
        ]
