"""A deposit and a withdrawal at a ccxt venue, end to end: the fake Binance's balances
change with no fill, the real exchange reads them through ccxt, and the real portfolio
books each as a transfer: equity moves, PnL does not."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from common.config import load_config
from common.server import running
from common.testing import eventually as _until
from common.testing import isolated_config
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.portfolio.main import SPEC
from tests.services.exchange.exchange_testing import StartExchange
from tests.services.exchange.test_ccxt_venue import BINANCE, settings_of

VENUE = BINANCE.exchange_id


async def test_a_deposit_and_a_withdrawal_at_the_venue_change_equity_not_pnl(
    start_exchange: StartExchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with BINANCE.serving() as fake:
        fake.set_balance("USDT", "1000")
        async with start_exchange(**settings_of(BINANCE, fake, monkeypatch)) as exchange:
            config = load_config(
                isolated_config(
                    tmp_path / "portfolio",
                    EXCHANGE__ADDRESS=exchange.address,
                    PORTFOLIO__MEMORY_BUDGET_MIB="2048",  # in-process: the runner's RSS
                    PORTFOLIO__INGESTION__TRANSFER_CHECK_SECONDS="0.05",
                )
            )
            async with (
                running(SPEC, config) as service,
                grpc.aio.insecure_channel(service.address) as channel,
            ):
                stub = portfolio_pb2_grpc.PortfolioServiceStub(channel)

                async def book() -> portfolio_pb2.Portfolio:
                    request = portfolio_pb2.GetPortfolioRequest(account_id=VENUE)
                    return (await stub.GetPortfolio(request)).portfolio

                async def cash_is(amount: str) -> bool:
                    try:
                        return Decimal((await book()).cash) == Decimal(amount)
                    except grpc.aio.AioRpcError as error:
                        if error.code() != grpc.StatusCode.NOT_FOUND:  # not open yet
                            raise
                        return False

                async def net_pnl() -> str:
                    request = portfolio_pb2.GetPnLRequest(account_id=VENUE)
                    return (await stub.GetPnL(request)).total.net

                await _until(lambda: cash_is("1000"))
                opened = await book()
                pnl = await net_pnl()
                fake.set_balance("USDT", "1250")  # a deposit
                await _until(lambda: cash_is("1250"))
                deposited = await book()
                fake.set_balance("USDT", "850")  # a withdrawal
                await _until(lambda: cash_is("850"))
                withdrawn = await book()
                assert await net_pnl() == pnl
                transfers = await stub.ListTransfers(
                    portfolio_pb2.ListTransfersRequest(account_id=VENUE)
                )

    assert Decimal(deposited.equity) - Decimal(opened.equity) == 250
    assert Decimal(withdrawn.equity) - Decimal(deposited.equity) == -400
    assert (opened.net_transfers, deposited.net_transfers, withdrawn.net_transfers) == (
        "0",
        "250",
        "-150",
    )
    assert [(t.asset, t.amount) for t in transfers.transfers] == [("USDT", "-400"), ("USDT", "250")]
