"""Entry point of the strategy service: `python -m services.strategy`.

The lifespan opens channels to the exchange (candles, tickers, orders, executions) and
the backtest service (GetResult, for a runner made from a backtest), loads the strategy
catalog (the `strategies` library the backtest service runs too), and resumes the
runners that were running before a stop or a crash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from common.channels import peer_channel
from common.fanout import Fanout
from common.server import run
from common.service import Runtime, ServiceSpec
from edgequant.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.strategy.manager import RunnerManager
from services.strategy.runners import RunnerEvent
from services.strategy.servicer import StrategyServicer
from services.strategy.settings import load_settings
from services.strategy.storage.repository import StrategyRepository
from services.strategy.venue import Backtests, Exchange
from strategies.catalog import StrategyCatalog


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[StrategyServicer]:
    settings = load_settings(runtime)
    runners = settings.runners
    catalog = StrategyCatalog(Path(runners.strategies_dir) if runners.strategies_dir else None)
    events: Fanout[RunnerEvent] = Fanout(
        "runner events", "GetRunner and ListDecisions, then StreamRunnerEvents again"
    )
    async with (
        peer_channel(runtime.config.exchange.address, runtime.config.grpc) as exchange_channel,
        peer_channel(runtime.config.backtest.address, runtime.config.grpc) as backtest_channel,
    ):
        manager = RunnerManager(
            StrategyRepository(runtime.sessions),
            Exchange(exchange_channel, runners.rpc_timeout_seconds),
            catalog,
            runners,
            events,
            memory=runtime.memory,
        )
        await manager.open()
        try:
            yield StrategyServicer(
                manager,
                catalog,
                events,
                Backtests(backtest_channel, runners.rpc_timeout_seconds),
                runners.allow_live,
            )
        finally:
            await manager.close()


SPEC = ServiceSpec(
    name="strategy",
    descriptor=strategy_pb2.DESCRIPTOR.services_by_name["StrategyService"],
    lifespan=lifespan,
    add_to_server=strategy_pb2_grpc.add_StrategyServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
