"""Entry point of the backtest service: `python -m services.backtest`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.server import run
from common.service import Runtime, ServiceSpec
from edgequant.backtest.v1 import backtest_pb2, backtest_pb2_grpc
from services.backtest.servicer import BacktestServicer


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[BacktestServicer]:
    yield BacktestServicer(runtime)


SPEC = ServiceSpec(
    name="backtest",
    descriptor=backtest_pb2.DESCRIPTOR.services_by_name["BacktestService"],
    lifespan=lifespan,
    add_to_server=backtest_pb2_grpc.add_BacktestServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
