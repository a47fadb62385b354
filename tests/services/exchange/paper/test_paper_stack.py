"""A fresh offline stack (real processes under supervisord, default config): risk answers
ComputeVaR on its default 1h timeframe from the paper markets' bundled real history, and
after fills on two further markets the portfolio holds what the exchange holds, with
each position marked from the exchange's tickers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from common.testing import Stack, isolated_config, running_stack
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from edgequant.portfolio.v1 import portfolio_pb2
from edgequant.risk.v1 import risk_pb2
from tests.stack.account_testing import (
    Stubs,
    connected,
    exchange_holdings,
    portfolio_holdings,
)

pytestmark = pytest.mark.stack

WITHIN_SECONDS = 30.0


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(isolated_config(tmp_path)) as running:
        yield running


async def _buy(stubs: Stubs, client_order_id: str, symbol: str, quantity: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_SECONDS
    while True:  # risk may not have the new market's first mark yet: it denies until then
        try:
            order = (
                await stubs.exchange.SubmitOrder(
                    exchange_pb2.SubmitOrderRequest(
                        venue="paper",
                        symbol=symbol,
                        side=common_pb2.SIDE_BUY,
                        type=common_pb2.ORDER_TYPE_MARKET,
                        quantity=quantity,
                        client_order_id=client_order_id,
                    ),
                    timeout=5,
                )
            ).order
            if order.status == common_pb2.ORDER_STATUS_FILLED:
                return
            problem = f"status {order.status}"
        except grpc.aio.AioRpcError as error:  # a rejection: sent again under a new id
            problem = f"{error.code().name}: {error.details()}"
        assert loop.time() < deadline, f"{symbol} buy not filled: {problem}"
        client_order_id += "-again"
        await asyncio.sleep(0.5)


async def _var_once_positions_are_known(stubs: Stubs) -> risk_pb2.ComputeVaRResponse:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_SECONDS
    while True:
        var = await stubs.risk.ComputeVaR(risk_pb2.ComputeVaRRequest(), timeout=30)
        if var.observations or loop.time() > deadline:
            return var
        await asyncio.sleep(0.5)


async def test_var_from_the_bundled_history_and_one_account_over_three_markets(
    stack: Stack,
) -> None:
    async with connected(stack.config) as stubs:
        # The opening 1 BTC (once risk has it from the portfolio): priced by the 1h candles
        # of the bundled past, >= 30 returns, not VAR_INSUFFICIENT_HISTORY.
        var = await _var_once_positions_are_known(stubs)
        assert var.observations >= 30
        assert var.value_at_risk > 0

        await _buy(stubs, "eth-1", "ETH/USDT", "2")
        await _buy(stubs, "ada-1", "ADA/USDT", "3000")

        loop = asyncio.get_running_loop()
        deadline = loop.time() + WITHIN_SECONDS
        while True:
            exchange = await exchange_holdings(stubs)
            portfolio = await portfolio_holdings(stubs)
            if exchange == portfolio or loop.time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert portfolio == exchange
        assert exchange["ETH"] == Decimal(2)
        assert exchange["ADA"] == Decimal(3000)
        assert exchange["USDT"] < Decimal(100000)

        positions = await stubs.portfolio.ListPositions(
            portfolio_pb2.ListPositionsRequest(account_id="paper"), timeout=5
        )
        marks = {p.symbol: p.mark_price for p in positions.positions}
        assert {"BTC/USDT", "ETH/USDT", "ADA/USDT"} <= set(marks)
        assert all(Decimal(marks[s]) > 0 for s in ("ETH/USDT", "ADA/USDT"))

        # Now three positions, each with its own 1h history.
        var = await stubs.risk.ComputeVaR(risk_pb2.ComputeVaRRequest(), timeout=30)
        assert var.observations >= 30
