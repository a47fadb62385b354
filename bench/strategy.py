"""Strategy: decision latency, RSS idle and with 10 runners, and parity with the bar engine.

The strategy service runs as its own process (python -m services.strategy) against the
candle test venue served from this process (services/strategy/testing.py: a real
ExchangeService over gRPC that serves a real dataset's candles as the bench releases
them and fills market orders at the bar engine's fill assumption, the signal bar's
close).

- Decision latency: 10 runners on 10 markets, each a strategy that flips between long
  and flat on every bar (an order per runner per bar); from the moment a candle is
  released (it closes) to the moment its order reaches the exchange, per order, as
  p50/p99. Beside it, in the same run, GetCandles(limit=1) over the same loopback:
  one round trip to the exchange, what the decision pays at least.
- RSS of the strategy process idle (no runner) and with the 10 runners after the load,
  against its soft limit (configs/: 0.85 x 128 MiB).
- Parity: one sma_cross runner through the dataset; its position after each bar against
  the bar engine's for the same target, capital and fee: decisions compared, mismatches.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import grpc
import numpy as np

from bench.report import Row, percentile
from bench.section import service_process, sized
from common.config import load_config
from common.memory import MIB, rss_bytes
from common.testing import isolated_config, serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.backtest.bars.engine import simulate
from services.backtest.bars.settings import BarSettings, EndOfData, FillTiming
from services.strategy.testing import CandleVenue, load_candles
from strategies.builtin import sma_cross
from strategies.candles import Candles

RUNNERS = 10
LATENCY_BARS = sized(100, 5)
PARITY_BARS = sized(400, 30)
HISTORY = 130
GET_CANDLES_CALLS = sized(500, 20)
STEP_MS = 300_000
# Long on every other 5-minute bar, flat on the rest: an order per bar.
FLIP = (
    '"""Long on every other bar, flat on the rest (the bench\'s order per bar)."""\n'
    "def warmup():\n    return 2\n\n"
    "def signals(candles):\n"
    f"    return ((candles.time // {STEP_MS}) % 2).astype(float)\n"
)


async def _wait_decided(
    stub: strategy_pb2_grpc.StrategyServiceAsyncStub, runner_id: str, bar_ms: int
) -> None:
    while True:
        page = await stub.ListDecisions(
            strategy_pb2.ListDecisionsRequest(runner_id=runner_id, page_size=3)
        )
        # Decided: its order, if any, answered and filled (a decision is written first).
        if any(
            d.bar_time.ToMilliseconds() == bar_ms and (not d.client_order_id or d.fill_price)
            for d in page.decisions
        ):
            return
        await asyncio.sleep(0.005)


def _request(symbol: str, strategy: str, capital: str, **fields: object) -> object:
    return strategy_pb2.CreateRunnerRequest(
        strategy=strategy,
        venue="paper",
        symbol=symbol,
        timeframe=common_pb2.TIMEFRAME_5M,
        capital=capital,
        **fields,  # type: ignore[arg-type]
    )


async def _latency_and_memory(directory: Path) -> tuple[list[float], list[float], float, float]:
    rows = load_candles(count=HISTORY + LATENCY_BARS)
    symbols = [f"S{index}/BTC" for index in range(RUNNERS)]
    venue = CandleVenue(  # type: ignore[abstract]
        rows, symbol=symbols[0], other_symbols=tuple(symbols[1:])
    )
    await venue.release(HISTORY)
    strategies = directory / "strategies"
    strategies.mkdir()
    (strategies / "flip.py").write_text(FLIP)
    async with serving(venue, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as address:
        environment = isolated_config(
            directory / "latency",
            EXCHANGE__ADDRESS=address,
            STRATEGY__RUNNERS__STRATEGIES_DIR=str(strategies),
        )
        config = load_config(environment)
        async with (
            service_process("strategy", environment) as process,
            grpc.aio.insecure_channel(config.strategy.address) as channel,
            grpc.aio.insecure_channel(address) as exchange_channel,
        ):
            await asyncio.sleep(1.0)  # idle: past the start's transient allocations
            idle = rss_bytes(process.pid) / MIB
            stub: strategy_pb2_grpc.StrategyServiceAsyncStub = (
                strategy_pb2_grpc.StrategyServiceStub(channel)
            )
            ids = []
            for symbol in symbols:
                created = await stub.CreateRunner(_request(symbol, "flip", "0.09"))  # type: ignore[arg-type]
                ids.append(created.runner.runner_id)
                await stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=ids[-1]))
            for runner_id in ids:
                await _wait_decided(stub, runner_id, int(rows[HISTORY - 1][0]))
            for index in range(HISTORY, HISTORY + LATENCY_BARS):
                await venue.release()
                # Every runner orders on every bar: watch the venue (in this process), not
                # the service (polling it would load what is measured).
                wanted = [f"r-{runner_id}-{int(rows[index][0])}" for runner_id in ids]
                while not all(cid in venue.submitted_at for cid in wanted):  # noqa: ASYNC110 - the venue is a dataclass with no event
                    await asyncio.sleep(0.001)
                for runner_id in ids:
                    await _wait_decided(stub, runner_id, int(rows[index][0]))
            with_runners = rss_bytes(process.pid) / MIB
            latencies = [
                (venue.submitted_at[client_order_id] - venue.released_at[index]) * 1000
                for index in range(HISTORY, HISTORY + LATENCY_BARS)
                for runner_id in ids
                if (client_order_id := f"r-{runner_id}-{int(rows[index][0])}") in venue.submitted_at
            ]
            exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub = (
                exchange_pb2_grpc.ExchangeServiceStub(exchange_channel)
            )
            candles = []
            request = exchange_pb2.GetCandlesRequest(
                venue="paper", symbol=symbols[0], timeframe=common_pb2.TIMEFRAME_5M, limit=1
            )
            for _ in range(GET_CANDLES_CALLS):
                started = time.perf_counter()
                await exchange.GetCandles(request)
                candles.append((time.perf_counter() - started) * 1000)
    return latencies, candles, idle, with_runners


async def _parity(directory: Path) -> tuple[int, int]:
    """(decisions compared, mismatches) of one sma_cross runner against the bar engine."""
    rows = load_candles(count=HISTORY + PARITY_BARS)
    venue = CandleVenue(rows)  # type: ignore[abstract]
    await venue.release(HISTORY)
    async with serving(venue, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as address:
        environment = isolated_config(directory / "parity", EXCHANGE__ADDRESS=address)
        config = load_config(environment)
        async with (
            service_process("strategy", environment),
            grpc.aio.insecure_channel(config.strategy.address) as channel,
        ):
            stub: strategy_pb2_grpc.StrategyServiceAsyncStub = (
                strategy_pb2_grpc.StrategyServiceStub(channel)
            )
            created = await stub.CreateRunner(
                _request(  # type: ignore[arg-type]
                    "ADA/BTC", "sma_cross", "0.5", parameters={"fast": 10, "slow": 30}, size="0.9"
                )
            )
            runner_id = created.runner.runner_id
            await stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner_id))
            await _wait_decided(stub, runner_id, int(rows[HISTORY - 1][0]))
            for index in range(HISTORY, len(rows)):
                await venue.release()
                await _wait_decided(stub, runner_id, int(rows[index][0]))
            decisions: list[strategy_pb2.Decision] = []
            token = ""
            while True:
                page = await stub.ListDecisions(
                    strategy_pb2.ListDecisionsRequest(
                        runner_id=runner_id, page_size=1000, page_token=token
                    )
                )
                decisions += page.decisions
                token = page.next_page_token
                if not token:
                    break
            final = (
                await stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))
            ).runner.position
    decisions.reverse()
    after: dict[int, Decimal] = {}
    for index, decision in enumerate(decisions):
        later = decisions[index + 1].position_before if index + 1 < len(decisions) else final
        after[decision.bar_time.ToMilliseconds()] = Decimal(later)
    candles = Candles.from_matrix(np.array([row[:6] for row in rows], dtype=np.float64))
    full = sma_cross(candles, 10, 30)
    first = HISTORY - 1
    target = np.full(len(full), np.nan)
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
            end_of_data=EndOfData.LEAVE_OPEN,
        ),
    ).position
    compared = mismatches = 0
    # The engine takes no fill on the last bar's close: that bar is left out.
    for index in range(first, len(rows) - 1):
        expected = Decimal(repr(float(engine[index])))
        actual = after[int(rows[index][0])]
        compared += 1
        if abs(actual - expected) > Decimal("0.00000002") + expected.copy_abs() * Decimal("1e-9"):
            mismatches += 1
    return compared, mismatches


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-strategy-") as name:
        directory = Path(name)
        latencies, candles, idle, with_runners = await _latency_and_memory(directory)
        compared, mismatches = await _parity(directory)
    budget = load_config(isolated_config(directory / "limits")).strategy
    soft = budget.memory_budget_mib * budget.soft_limit_ratio
    measure = f"decision latency, candle close -> order at the exchange ({RUNNERS} runners)"
    return [
        Row(
            "strategy",
            f"{measure} p50",
            "ms",
            percentile(latencies, 50),
            percentile(candles, 50),
            "GetCandles round trip",
        ),
        Row(
            "strategy",
            f"{measure} p99",
            "ms",
            percentile(latencies, 99),
            percentile(candles, 99),
            "GetCandles round trip",
        ),
        Row("strategy", "RSS idle (no runner)", "MiB", idle, target=f"<= {soft:.1f} (soft)"),
        Row(
            "strategy",
            f"RSS with {RUNNERS} runners, after the load",
            "MiB",
            with_runners,
            target=f"<= {soft:.1f} (soft)",
        ),
        Row("strategy", "parity with the bar engine: decisions compared", "", float(compared)),
        Row(
            "strategy", "parity with the bar engine: mismatches", "", float(mismatches), target="0"
        ),
    ]
