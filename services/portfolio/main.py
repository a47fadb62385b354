"""Entry point of the portfolio service: `python -m services.portfolio`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.server import run
from common.service import Runtime, ServiceSpec
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.portfolio.servicer import PortfolioServicer


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[PortfolioServicer]:
    yield PortfolioServicer(runtime)


SPEC = ServiceSpec(
    name="portfolio",
    descriptor=portfolio_pb2.DESCRIPTOR.services_by_name["PortfolioService"],
    lifespan=lifespan,
    add_to_server=portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
