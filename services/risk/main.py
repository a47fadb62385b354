"""Entry point of the risk service: `python -m services.risk`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.server import run
from common.service import Runtime, ServiceSpec
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.risk.servicer import RiskServicer


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[RiskServicer]:
    yield RiskServicer(runtime)


SPEC = ServiceSpec(
    name="risk",
    descriptor=risk_pb2.DESCRIPTOR.services_by_name["RiskService"],
    lifespan=lifespan,
    add_to_server=risk_pb2_grpc.add_RiskServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
