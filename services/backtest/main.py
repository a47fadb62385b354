"""Entry point of the backtest service: `python -m services.backtest`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from common.config import parse_settings
from common.server import run
from common.service import Runtime, ServiceSpec
from edgequant.backtest.v1 import backtest_pb2, backtest_pb2_grpc
from services.backtest.datasets.exchange import fetch_candles
from services.backtest.datasets.intake import DatasetIntakes
from services.backtest.datasets.store import DatasetStore
from services.backtest.jobs.manager import JobManager
from services.backtest.servicer import BacktestServicer
from services.backtest.settings import BacktestSettings, Paths
from services.backtest.storage.jobs import JobRepository
from services.backtest.strategies.catalog import StrategyCatalog


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[BacktestServicer]:
    settings = parse_settings(BacktestSettings, runtime.settings.extensions, "backtest.")
    paths = Paths(runtime.config.var_dir / "backtest")
    paths.make()
    import_dir = (
        Path(settings.datasets.import_dir)
        if settings.datasets.import_dir
        else (paths.root / "import")
    )
    strategies_dir = Path(settings.jobs.strategies_dir) if settings.jobs.strategies_dir else None
    datasets = DatasetStore(runtime.sessions, paths.datasets, import_dir)
    exchange_address, grpc_settings = runtime.config.exchange.address, runtime.config.grpc

    async def fetch(venue: str, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> bytes:
        return await fetch_candles(
            exchange_address,
            grpc_settings,
            venue=venue,
            symbol=symbol,
            timeframe=timeframe,
            start_ms=start_ms,
            end_ms=end_ms,
        )

    manager = JobManager(
        JobRepository(runtime.sessions),
        datasets,
        paths.results,
        settings.jobs,
        runtime.memory,
        cluster=settings.cluster,
    )
    await manager.start()
    try:
        yield BacktestServicer(
            StrategyCatalog(strategies_dir), datasets, DatasetIntakes(datasets, fetch), manager
        )
    finally:
        await manager.stop()


SPEC = ServiceSpec(
    name="backtest",
    descriptor=backtest_pb2.DESCRIPTOR.services_by_name["BacktestService"],
    lifespan=lifespan,
    add_to_server=backtest_pb2_grpc.add_BacktestServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
