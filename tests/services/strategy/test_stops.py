"""Stop-loss and take-profit inside the bar, from the ticker stream: the runner sends a
market order when the mark crosses a level, not at the next close. With them on, the
bar engine and the runner are not expected to agree to the tick: the engine fills at
the level (or the open past a gap), the runner at the tick that crossed it. This test
reports, per stop exit, the live trigger price beside the engine's, and checks that
every exit happened inside its bar's range and at a level the engine also reached."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np

from common.testing import serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2_grpc
from edgequant.strategy.v1 import strategy_pb2
from services.backtest.bars.engine import EXIT_REASONS, simulate
from services.backtest.bars.settings import BarSettings, EndOfData, FillTiming
from services.strategy.testing import CandleVenue, load_candles
from strategies.builtin import sma_cross
from strategies.candles import Candles
from tests.services.strategy.runner_testing import (
    StrategyProcess,
    all_decisions,
    strategy_client,
    wait_for_decision,
)

HISTORY = 130
LIVE_BARS = 300
STOP_LOSS, TAKE_PROFIT = "0.01", "0.015"


async def test_stops_trigger_inside_the_bar_and_are_reported_beside_the_engine(
    tmp_path: Path,
) -> None:
    rows = load_candles(count=HISTORY + LIVE_BARS)
    venue = CandleVenue(rows, ticks=True)  # type: ignore[abstract]
    await venue.release(HISTORY)
    async with serving(venue, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as address:
        service = StrategyProcess(tmp_path, address)
        await service.start()
        try:
            async with strategy_client(service.address) as stub:
                runner_id = (
                    await stub.CreateRunner(
                        strategy_pb2.CreateRunnerRequest(
                            strategy="sma_cross",
                            parameters={"fast": 10, "slow": 30},
                            venue="paper",
                            symbol="ADA/BTC",
                            timeframe=common_pb2.TIMEFRAME_5M,
                            capital="0.5",
                            size="0.9",
                            stop_loss=STOP_LOSS,
                            take_profit=TAKE_PROFIT,
                        )
                    )
                ).runner.runner_id
                await stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner_id))
                await wait_for_decision(stub, runner_id, int(rows[HISTORY - 1][0]))
                for index in range(HISTORY, HISTORY + LIVE_BARS):
                    await venue.release()
                    await wait_for_decision(stub, runner_id, int(rows[index][0]))
                decisions = await all_decisions(stub, runner_id)
        finally:
            service.stop()

    candles = Candles.from_matrix(np.array([row[:6] for row in rows], dtype=np.float64))
    full = sma_cross(candles, 10, 30)
    target = np.full(len(full), np.nan)
    first = HISTORY - 1
    defined = full[: first + 1][~np.isnan(full[: first + 1])]
    if len(defined):
        target[first] = defined[-1]
    target[first + 1 :] = full[first + 1 :]
    engine = simulate(
        candles,
        target,
        BarSettings(
            initial_cash=0.5,
            fee_rate=0.001,
            fill_timing=FillTiming.SAME_CLOSE,
            size=0.9,
            stop_loss=float(STOP_LOSS),
            take_profit=float(TAKE_PROFIT),
            end_of_data=EndOfData.LEAVE_OPEN,
        ),
    ).trades
    by_time = {int(row[0]): index for index, row in enumerate(rows)}
    stops = [d for d in decisions if d.reason in ("stop_loss", "take_profit")]
    assert stops, "the slice must trigger a stop"
    report = []
    for decision in stops:
        bar = by_time[decision.bar_time.ToMilliseconds()]
        live = Decimal(decision.fill_price)
        assert Decimal(repr(rows[bar][3])) <= live <= Decimal(repr(rows[bar][2]))
        matches = np.flatnonzero(engine.exit_bar == bar)
        if len(matches):
            k = int(matches[0])
            engine_price = Decimal(repr(float(engine.exit_price[k])))
            engine_reason = EXIT_REASONS[int(engine.exit_reason[k])]
            bps = (live - engine_price) / engine_price * 10_000
            report.append(
                f"bar {bar}: live {decision.reason} at {live} (trigger), engine "
                f"{engine_reason} at {engine_price}: {bps:+.1f} bps"
            )
        else:
            report.append(f"bar {bar}: live {decision.reason} at {live}; engine: no exit")
    print("\nstop exits, live vs engine:\n  " + "\n  ".join(report))
    engine_stops = int(np.isin(engine.exit_reason, (1, 2)).sum())
    print(f"live stop exits: {len(stops)}, engine stop exits: {engine_stops}")
    matched = sum(1 for line in report if "engine: no exit" not in line)
    assert matched == len(stops)
