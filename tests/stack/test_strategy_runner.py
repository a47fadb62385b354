"""A paper runner on the real stack (`make run`'s supervisord, real processes): created
from catalog strategy and parameters, it warms up on the exchange's candle history, takes
the newest closed bar's position with a market order that passes risk and lands in the
portfolio as a fill, then decides the next candle StreamCandles closes; the gateway
serves its routes with the admin scope for changes."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from common.testing import isolated_config, running_stack
from edgequant.common.v1 import common_pb2
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from edgequant.strategy.v1 import strategy_pb2, strategy_pb2_grpc

pytestmark = pytest.mark.stack


async def _until(check: object, within: float = 150.0) -> object:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        value = await check()  # type: ignore[operator]
        if value:
            return value
        await asyncio.sleep(0.2)
    raise TimeoutError("condition not met")


async def test_a_paper_runner_trades_through_risk_and_decides_closed_candles(
    tmp_path: Path,
) -> None:
    environment = isolated_config(tmp_path)
    async with (
        running_stack(environment) as stack,
        grpc.aio.insecure_channel(stack.config.strategy.address) as channel,
        grpc.aio.insecure_channel(stack.config.portfolio.address) as portfolio_channel,
    ):
        stub = strategy_pb2_grpc.StrategyServiceStub(channel)
        portfolio = portfolio_pb2_grpc.PortfolioServiceStub(portfolio_channel)
        runner = (
            await stub.CreateRunner(
                strategy_pb2.CreateRunnerRequest(
                    strategy="buy_and_hold",
                    venue="paper",
                    symbol="BTC/USDT",
                    timeframe=common_pb2.TIMEFRAME_1M,
                    capital="1000",
                    size="0.5",
                )
            )
        ).runner
        assert runner.mode == strategy_pb2.RUNNER_MODE_PAPER
        await stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner.runner_id))

        async def entered() -> strategy_pb2.Runner | None:
            got = (
                await stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner.runner_id))
            ).runner
            return got if Decimal(got.position) > 0 else None

        held = await _until(entered)
        assert isinstance(held, strategy_pb2.Runner)
        # About 500 USDT of BTC (half the capital, the taker fee included).
        spent = Decimal(runner.capital) - Decimal(held.cash)
        assert Decimal("400") < spent <= Decimal("500")
        entry = await stub.ListDecisions(
            strategy_pb2.ListDecisionsRequest(runner_id=runner.runner_id)
        )
        (order_id,) = {d.order_id for d in entry.decisions if d.client_order_id}

        async def in_portfolio() -> bool:
            fills = await portfolio.ListFills(portfolio_pb2.ListFillsRequest(account_id="paper"))
            return any(fill.order_id == order_id for fill in fills.fills)

        await _until(in_portfolio)

        first = held.last_bar_time.ToMilliseconds()

        async def next_bar() -> bool:
            got = (
                await stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner.runner_id))
            ).runner
            return got.last_bar_time.ToMilliseconds() > first

        # The next 1-minute candle closes on the wall clock and is decided.
        await _until(next_bar, within=150)
        decisions = await stub.ListDecisions(
            strategy_pb2.ListDecisionsRequest(runner_id=runner.runner_id)
        )
        assert [d.order_status for d in decisions.decisions if d.client_order_id] == [
            common_pb2.ORDER_STATUS_FILLED
        ]
