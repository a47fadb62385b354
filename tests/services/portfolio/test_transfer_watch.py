"""Deposits and withdrawals at the venue: a difference between its balances and the
ledger that no fill explains is booked as a transfer once nothing else can explain it
(the venue's balances include exactly the ledger's executions, no order is open or of
unknown outcome, and two checks in a row agree). Equity moves; PnL, returns and
drawdown do not. The real portfolio service against a scripted exchange over gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal

import grpc

from common.server import RunningService
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.portfolio.testing import ScriptedExchange, balance, execution, ticker, venue

Portfolio = Callable[..., AbstractAsyncContextManager[RunningService]]
TESTNET = "binance-testnet"


async def _until(condition: Callable[[], bool], within: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _until_true(probe: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await probe():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_a_deposit_and_a_withdrawal_change_equity_but_not_pnl_or_returns(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> None:
    scripted, _ = exchange
    scripted.venues = [venue("paper"), venue(TESTNET, exchange_pb2.VENUE_KIND_SANDBOX)]
    scripted.balances[TESTNET] = [balance("USDT", "1000")]
    scripted.set_ticker(ticker("BTC/USDT", "110", "110", venue=TESTNET))
    scripted.follow = True

    def checks() -> int:
        return scripted.balance_reads.count(TESTNET)

    async def checked(times: int) -> None:
        """`times` more transfer checks have read the venue's balances."""
        target = checks() + times
        await _until(lambda: checks() >= target)

    async with (
        portfolio(
            PORTFOLIO__INGESTION__TRANSFER_CHECK_SECONDS="0.02",
            PORTFOLIO__EQUITY__SNAPSHOT_SECONDS="0.02",
        ) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        stub = portfolio_pb2_grpc.PortfolioServiceStub(channel)

        async def book() -> portfolio_pb2.Portfolio:
            request = portfolio_pb2.GetPortfolioRequest(account_id=TESTNET)
            return (await stub.GetPortfolio(request)).portfolio

        async def cash_is(amount: str) -> bool:
            try:
                return (await book()).cash == amount
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: not open yet
                    raise
                return False

        async def snapshot_with(net_transfers: str) -> bool:
            request = portfolio_pb2.GetEquityHistoryRequest(account_id=TESTNET)
            points = (await stub.GetEquityHistory(request)).points
            return any(p.net_transfers == net_transfers for p in points)

        async def pnl() -> str:
            request = portfolio_pb2.GetPnLRequest(account_id=TESTNET)
            return (await stub.GetPnL(request)).total.net

        await _until_true(lambda: cash_is("1000"))  # opened from the venue's balances
        # A fill: the venue's balances and the ledger move together.
        scripted.balances[TESTNET] = [balance("USDT", "900"), balance("BTC", "1")]
        scripted.balances_as_of = 1
        scripted.append(execution(1, "buy", "1", "100", venue=TESTNET))
        await _until_true(lambda: cash_is("900"))
        await checked(3)
        # 1 BTC bought at 100, marked 110 once the ticker is followed.
        await _until_true(lambda: _is(pnl(), "10"))
        pnl_before = await pnl()
        before = await book()
        assert (before.cash, before.net_transfers) == ("900", "0")

        # 500 USDT arrive while an order is open: its fill could explain it, so wait.
        scripted.balances[TESTNET] = [balance("USDT", "1400"), balance("BTC", "1")]
        scripted.open_orders[TESTNET] = [
            common_pb2.Order(order_id="o-9", status=common_pb2.ORDER_STATUS_PENDING_NEW)
        ]
        await checked(3)
        assert (await book()).cash == "900"
        # Balances that include an execution the ledger has not applied: wait too.
        scripted.open_orders[TESTNET] = []
        scripted.balances_as_of = 2
        await checked(3)
        assert (await book()).cash == "900"
        # Nothing else explains it: a deposit, booked on the second check that sees it.
        scripted.balances_as_of = 1
        await _until_true(lambda: cash_is("1400"))
        deposited = await book()
        assert (deposited.cash, deposited.net_transfers) == ("1400", "500")
        assert Decimal(deposited.equity) == Decimal(before.equity) + 500

        # 300 USDT withdrawn.
        scripted.balances[TESTNET] = [balance("USDT", "1100"), balance("BTC", "1")]
        await _until_true(lambda: cash_is("1100"))
        withdrawn = await book()
        assert (withdrawn.cash, withdrawn.net_transfers) == ("1100", "200")
        assert await pnl() == pnl_before
        await checked(2)  # and nothing more is booked once the ledger agrees
        assert (await book()).cash == "1100"

        first = await stub.ListTransfers(
            portfolio_pb2.ListTransfersRequest(account_id=TESTNET, page_size=1)
        )
        second = await stub.ListTransfers(
            portfolio_pb2.ListTransfersRequest(
                account_id=TESTNET, page_size=1, page_token=first.next_page_token
            )
        )
        await _until_true(lambda: snapshot_with("200"))
        history = await stub.GetEquityHistory(
            portfolio_pb2.GetEquityHistoryRequest(account_id=TESTNET)
        )
        performance = (
            await stub.GetPerformance(portfolio_pb2.GetPerformanceRequest(account_id=TESTNET))
        ).performance

    newest_first = [
        (t.asset, t.amount, t.value, t.as_of_sequence)
        for t in (*first.transfers, *second.transfers)
    ]
    assert newest_first == [("USDT", "-300", "-300", 1), ("USDT", "500", "500", 1)]
    assert second.next_page_token == ""
    # Equity net of flows never fell: the withdrawal is no drawdown, the deposit no gain.
    net = [Decimal(p.equity) - Decimal(p.net_transfers) for p in history.points]
    assert {p.net_transfers for p in history.points} >= {"0", "500", "200"}
    assert max(net) == net[-1] == Decimal(1010)
    assert performance.max_drawdown == 0.0
    assert performance.total_return <= 0.0101  # 1000 -> 1010 at most; 0.21 with the flows


async def _is(value: Awaitable[str], expected: str) -> bool:
    return Decimal(await value) == Decimal(expected)
