"""An order's way through the real stack (DESIGN.md): exchange -> risk -> paper venue ->
executions outbox -> portfolio, each a real process under supervisord."""

from __future__ import annotations

import asyncio
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from common.config import SERVICE_NAMES, Config
from common.errors import reason_of
from common.testing import isolated_config, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc

# The exchange's first check may find its channel to risk still connecting (fail
# closed). Never RISK_STATE_STALE: risk reports SERVING only once its books have synced.
NOT_READY = {"RISK_UNAVAILABLE"}
ATTEMPTS = 120


async def _submit_once_risk_is_ready(
    exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub,
) -> common_pb2.Order:
    for attempt in range(ATTEMPTS):
        request = exchange_pb2.SubmitOrderRequest(
            venue="paper",
            symbol="BTC/USDT",
            side=common_pb2.SIDE_BUY,
            type=common_pb2.ORDER_TYPE_MARKET,
            quantity="0.01",
            # A rejected id keeps its rejection (idempotency): each attempt is a new order.
            client_order_id=f"flow-{attempt}",
        )
        try:
            return (await exchange.SubmitOrder(request, timeout=5)).order
        except grpc.aio.AioRpcError as error:
            if reason_of(error) not in NOT_READY:
                raise
        await asyncio.sleep(0.5)
    raise AssertionError("risk never became ready")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The stack on SQLite files (the default), and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return isolated_config(tmp_path)
    server = request.getfixturevalue("postgres_server")
    return isolated_config(tmp_path, **server.stack_overrides())


async def test_a_market_order_reaches_the_ledger_and_the_risk_book(
    stack: subprocess.Popen[str], config: Config
) -> None:
    for name in SERVICE_NAMES:
        await wait_until_serving(config.service(name).address, within=60)
    async with (
        grpc.aio.insecure_channel(config.exchange.address) as exchange_channel,
        grpc.aio.insecure_channel(config.portfolio.address) as portfolio_channel,
        grpc.aio.insecure_channel(config.risk.address) as risk_channel,
    ):
        exchange = exchange_pb2_grpc.ExchangeServiceStub(exchange_channel)
        portfolio = portfolio_pb2_grpc.PortfolioServiceStub(portfolio_channel)
        risk = risk_pb2_grpc.RiskServiceStub(risk_channel)

        order = await _submit_once_risk_is_ready(exchange)
        assert order.status == common_pb2.ORDER_STATUS_FILLED
        assert Decimal(order.filled_quantity) == Decimal("0.01")

        # The fill is in the exchange's outbox ...
        stream = exchange.StreamExecutions(exchange_pb2.StreamExecutionsRequest(after_seq=0))
        first = await stream.read()
        assert isinstance(first, exchange_pb2.StreamExecutionsResponse)
        execution = first.execution
        stream.cancel()
        assert execution.order_id == order.order_id

        # ... and reaches the portfolio's ledger and the risk service's book.
        for _ in range(ATTEMPTS):
            positions = await portfolio.ListPositions(
                portfolio_pb2.ListPositionsRequest(account_id="paper")
            )
            exposure = await risk.GetExposure(risk_pb2.GetExposureRequest())
            held = {p.symbol: Decimal(p.quantity) for p in positions.positions}
            seen = {s.symbol: Decimal(s.quantity) for s in exposure.exposure.symbols}
            if held.get("BTC/USDT") == Decimal("1.01") and seen.get("BTC/USDT") == Decimal("1.01"):
                break
            await asyncio.sleep(0.25)
        # The paper account opened with the configured 1 BTC, then bought 0.01.
        assert held == {"BTC/USDT": Decimal("1.01")}
        assert seen["BTC/USDT"] == Decimal("1.01")
        fills = await portfolio.ListFills(portfolio_pb2.ListFillsRequest(account_id="paper"))
        assert [fill.trade_id for fill in fills.fills] == [execution.trade_id]
    # Where the stack ran on PostgreSQL, no service fell back to a SQLite file.
    if config.database_url("exchange").startswith("postgresql"):
        assert not any(name.endswith(".db") for name in os.listdir(config.var_dir))
