"""What the portfolio opens a venue account from: ListVenues gives the paper venue's
configured starting balances, unchanged by fills and restarts; GetBalances gives the
holdings now with the last execution sequence they include."""

from __future__ import annotations

from decimal import Decimal

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import SELL, Exchange, StartExchange, order


def _totals(balances: list[common_pb2.Balance]) -> dict[str, Decimal]:
    return {b.asset: Decimal(b.total) for b in balances}


async def _starting(exchange: Exchange) -> dict[str, Decimal]:
    (paper,) = (await exchange.stub.ListVenues(exchange_pb2.ListVenuesRequest())).venues
    assert paper.kind == exchange_pb2.VENUE_KIND_PAPER
    return _totals(list(paper.starting_balances))


async def test_starting_balances_stay_while_balances_follow_the_fills(
    start_exchange: StartExchange,
) -> None:
    configured = {"USDT": Decimal(100000), "BTC": Decimal(1)}  # [exchange.paper] balances
    async with start_exchange() as exchange:
        assert await _starting(exchange) == configured
        before = await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
        assert (_totals(list(before.balances)), before.as_of_sequence) == (configured, 0)

        await exchange.stub.SubmitOrder(order(client_order_id="b-1", quantity="0.01"))
        await exchange.stub.SubmitOrder(order(client_order_id="s-1", side=SELL, quantity="0.5"))
        after = await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
        assert after.as_of_sequence >= 2  # both orders filled, walking one level or more
        assert _totals(list(after.balances))["BTC"] == Decimal("0.51")
        assert await _starting(exchange) == configured
    async with start_exchange() as restarted:
        # Rebuilt from the same starting balances and the executions: the same holdings.
        assert await _starting(restarted) == configured
        again = await restarted.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
        assert _totals(list(again.balances)) == _totals(list(after.balances))
        assert again.as_of_sequence == after.as_of_sequence
