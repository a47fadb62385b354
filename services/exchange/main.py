"""Entry point of the exchange service: `python -m services.exchange`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.server import run
from common.service import Runtime, ServiceSpec
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.exchange.servicer import ExchangeServicer


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[ExchangeServicer]:
    yield ExchangeServicer(runtime)


SPEC = ServiceSpec(
    name="exchange",
    descriptor=exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"],
    lifespan=lifespan,
    add_to_server=exchange_pb2_grpc.add_ExchangeServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
