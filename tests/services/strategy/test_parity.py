"""Parity: a runner driven through a real dataset's candles ends up, bar for bar, in the
positions the bar engine computes for the same strategy and parameters, including
across a SIGKILL of the strategy service mid-run.

The exchange is a test venue over real gRPC (tests/services/strategy/venue_testing.py)
that serves the dataset's candles as the test releases them and fills each market order
at the engine's fill assumption (`SAME_CLOSE`: the signal bar's close). The strategy
service is a real process. The engine gets the target the runner acted on: the
strategy's output, taken from the runner's first decided bar on (its wanted position
then, NaN before), with the runner's capital as initial cash, the venue's taker fee.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np

from common.testing import serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2_grpc
from edgequant.strategy.v1 import strategy_pb2
from services.backtest.bars.engine import simulate
from services.backtest.bars.settings import BarSettings, EndOfData, FillTiming
from services.strategy.testing import CandleVenue, load_candles
from strategies.builtin import sma_cross
from strategies.candles import Candles, FloatArray
from tests.services.strategy.runner_testing import (
    StrategyProcess,
    all_decisions,
    positions_after,
    strategy_client,
    wait_for_decision,
)

FAST, SLOW = 10, 30
CAPITAL = "0.5"
SIZE = "0.9"
# Candles before the runner starts (its warm-up loads 2 x (2 x slow + 2) of them).
HISTORY = 130
LIVE_BARS = 420
KILL_AT = 200


def engine_positions(rows: list[list[float]], first_bar: int) -> FloatArray:
    candles = Candles.from_matrix(np.array([row[:6] for row in rows], dtype=np.float64))
    full = sma_cross(candles, FAST, SLOW)
    target = np.full(len(full), np.nan)
    defined = full[: first_bar + 1][~np.isnan(full[: first_bar + 1])]
    if len(defined):
        target[first_bar] = defined[-1]
    target[first_bar + 1 :] = full[first_bar + 1 :]
    result = simulate(
        candles,
        target,
        BarSettings(
            initial_cash=float(CAPITAL),
            fee_rate=0.001,
            fill_timing=FillTiming.SAME_CLOSE,
            size=float(SIZE),
            end_of_data=EndOfData.LEAVE_OPEN,
        ),
    )
    return result.position


async def test_a_runner_matches_the_bar_engine_bar_for_bar_across_a_kill(tmp_path: Path) -> None:
    rows = load_candles(count=HISTORY + LIVE_BARS)
    venue = CandleVenue(rows)  # type: ignore[abstract]
    await venue.release(HISTORY)
    async with serving(venue, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as address:
        service = StrategyProcess(tmp_path, address)
        await service.start()
        try:
            async with strategy_client(service.address) as stub:
                created = await stub.CreateRunner(
                    strategy_pb2.CreateRunnerRequest(
                        strategy="sma_cross",
                        parameters={"fast": FAST, "slow": SLOW},
                        venue="paper",
                        symbol="ADA/BTC",
                        timeframe=common_pb2.TIMEFRAME_5M,
                        capital=CAPITAL,
                        size=SIZE,
                    )
                )
                runner_id = created.runner.runner_id
                assert created.runner.state == strategy_pb2.RUNNER_STATE_STOPPED
                await stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner_id))
                await wait_for_decision(stub, runner_id, int(rows[HISTORY - 1][0]))
            for index in range(HISTORY, HISTORY + LIVE_BARS):
                await venue.release()
                if index == KILL_AT:
                    # Mid-run, with a candle out and its decision maybe half done.
                    service.kill()
                    await service.start()
                async with strategy_client(service.address) as stub:
                    await wait_for_decision(stub, runner_id, int(rows[index][0]))
            async with strategy_client(service.address) as stub:
                decisions = await all_decisions(stub, runner_id)
                final = (
                    await stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))
                ).runner
        finally:
            service.stop()

    expected = engine_positions(rows, HISTORY - 1)
    actual = positions_after(decisions, final.position)
    # The engine takes no fill on the last bar's close (it would be undone at once).
    compared = [int(row[0]) for row in rows[HISTORY - 1 : -1]]
    step = Decimal(venue.quantity_increment)
    mismatches = []
    for bar_ms in compared:
        index = next(i for i, row in enumerate(rows) if int(row[0]) == bar_ms)
        engine = Decimal(repr(float(expected[index])))
        runner = actual[bar_ms]
        # The runner's quantities are whole lots (0.00000001) sized from Decimal cash.
        if abs(runner - engine) > 2 * step + engine.copy_abs() * Decimal("1e-9"):
            mismatches.append((bar_ms, str(runner), str(engine)))
    trades = sum(1 for d in decisions if d.client_order_id)
    print(
        f"parity: {len(compared)} decisions compared, {len(mismatches)} mismatches, "
        f"{trades} orders, kill -9 at bar {KILL_AT}"
    )
    assert len(actual) == len(compared) + 1
    assert trades >= 4, "the dataset slice must make the strategy trade"
    assert mismatches == []
    # One order per client_order_id, none sent twice across the kill.
    assert len(venue.orders) == trades
    # Fills are compared with the engine's assumption: here they are the same price.
    for decision in decisions:
        if decision.client_order_id:
            assert Decimal(decision.fill_price) == Decimal(decision.expected_price)
