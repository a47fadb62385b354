"""Every RPC of the contract has a servicer method, reachable on a real server.

RPCs whose issue has not landed answer UNIMPLEMENTED with reason NOT_YET_IMPLEMENTED;
this test prints them, so the report shows what is still to build.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import symbol_database
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common.server import RunningService
from services.backtest.servicer import BacktestServicer
from services.exchange.servicer import ExchangeServicer
from services.portfolio.servicer import PortfolioServicer
from services.registry import SPECS
from services.risk.servicer import RiskServicer
from services.strategy.servicer import StrategyServicer

_SYMBOLS = symbol_database.Default()


SERVICERS = [ExchangeServicer, PortfolioServicer, RiskServicer, BacktestServicer, StrategyServicer]


@pytest.mark.parametrize("servicer", SERVICERS, ids=lambda servicer: servicer.__name__)
def test_servicer_defines_every_rpc(servicer: type) -> None:
    """Defined on the class itself, not inherited from the generated base."""
    (base,) = servicer.__bases__
    service_name = base.__name__.removesuffix("Servicer")
    spec = next(spec for spec in SPECS if spec.descriptor.name == service_name)
    missing = [m.name for m in spec.descriptor.methods if m.name not in vars(servicer)]
    assert not missing


async def _call(channel: grpc.aio.Channel, method: Any) -> None:
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = _SYMBOLS.GetSymbol(method.input_type.full_name)()
    response_class = _SYMBOLS.GetSymbol(method.output_type.full_name)
    kind: Callable[..., Any] = (
        channel.unary_stream if method.server_streaming else channel.unary_unary
    )
    call = kind(
        path,
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_class.FromString,
    )(request, timeout=5)
    if method.server_streaming:
        async for _ in call:
            break
        call.cancel()
    else:
        await call


async def test_every_rpc_is_served(services: list[RunningService]) -> None:
    pending: list[str] = []
    for service in services:
        async with grpc.aio.insecure_channel(service.address) as channel:
            for method in service.spec.descriptor.methods:
                try:
                    await _call(channel, method)
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                        continue  # implemented: an empty request may well be invalid
                    status = rpc_status.from_call(error)
                    assert status is not None, f"{method.full_name} is not registered"
                    info = error_details_pb2.ErrorInfo()
                    status.details[0].Unpack(info)
                    assert info.reason == "NOT_YET_IMPLEMENTED"
                    pending.append(f"{method.full_name} (issue #{info.metadata['issue']})")
    print(f"\n{len(pending)} RPCs still answer UNIMPLEMENTED:\n  " + "\n  ".join(pending))
