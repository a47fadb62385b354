"""The interceptor on a real grpc.aio server: errors become rich statuses, ids travel."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from common.errors import FailedPrecondition, FieldViolation, InvalidArgument, reason_of
from common.logs import request_id
from common.testing import free_port, serving
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc


class ScriptedRisk(risk_pb2_grpc.RiskServiceServicer):
    """Answers four RPCs in the ways a real servicer can; the rest are never called."""

    async def CheckOrder(self, request: Any, context: Any) -> risk_pb2.CheckOrderResponse:
        raise InvalidArgument([FieldViolation("quantity", "must be greater than 0")])

    async def GetLimits(self, request: Any, context: Any) -> risk_pb2.GetLimitsResponse:
        raise RuntimeError("database password is hunter2")

    async def GetTradingState(self, request: Any, context: Any) -> risk_pb2.GetTradingStateResponse:
        info = risk_pb2.TradingStateInfo(reason=request_id.get())
        return risk_pb2.GetTradingStateResponse(trading_state=info)

    async def StreamRiskEvents(
        self, request: Any, context: Any
    ) -> AsyncIterator[risk_pb2.StreamRiskEventsResponse]:
        yield risk_pb2.StreamRiskEventsResponse(event=risk_pb2.RiskEvent(message="first"))
        raise FailedPrecondition("trading is halted", reason="TRADING_HALTED")


@pytest.fixture
async def risk_stub() -> AsyncIterator[risk_pb2_grpc.RiskServiceAsyncStub]:
    # Only the typing stubs mark the other RPCs abstract; at run time they answer UNIMPLEMENTED.
    servicer = ScriptedRisk()  # type: ignore[abstract]
    async with (
        serving(servicer, risk_pb2_grpc.add_RiskServiceServicer_to_server) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        yield risk_pb2_grpc.RiskServiceStub(channel)


def _status_of(error: grpc.aio.AioRpcError) -> Any:
    return rpc_status.from_call(error)


async def test_domain_error_arrives_with_field_violations(
    risk_stub: risk_pb2_grpc.RiskServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await risk_stub.CheckOrder(risk_pb2.CheckOrderRequest())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = _status_of(raised.value)
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "quantity"


async def test_a_client_reads_the_reason_back_and_none_from_a_dead_channel(
    risk_stub: risk_pb2_grpc.RiskServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await risk_stub.CheckOrder(risk_pb2.CheckOrderRequest())
    assert reason_of(raised.value) == "INVALID_ARGUMENT"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as dead:
        with pytest.raises(grpc.aio.AioRpcError) as unreachable:
            await risk_pb2_grpc.RiskServiceStub(dead).CheckOrder(
                risk_pb2.CheckOrderRequest(), timeout=1
            )
    assert reason_of(unreachable.value) == ""


async def test_unexpected_error_is_internal_and_leaks_nothing(
    risk_stub: risk_pb2_grpc.RiskServiceAsyncStub, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="edgequant.rpc"),
        pytest.raises(grpc.aio.AioRpcError) as raised,
    ):
        await risk_stub.GetLimits(risk_pb2.GetLimitsRequest())
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (raised.value.details() or "")
    assert "hunter2" not in str(raised.value.trailing_metadata())
    assert any("GetLimits" in record.getMessage() for record in caplog.records)


async def test_request_id_is_taken_from_metadata(
    risk_stub: risk_pb2_grpc.RiskServiceAsyncStub,
) -> None:
    response = await risk_stub.GetTradingState(
        risk_pb2.GetTradingStateRequest(), metadata=(("x-request-id", "req-42"),)
    )
    assert response.trading_state.reason == "req-42"


async def test_request_id_is_generated_when_absent(
    risk_stub: risk_pb2_grpc.RiskServiceAsyncStub,
) -> None:
    first = await risk_stub.GetTradingState(risk_pb2.GetTradingStateRequest())
    second = await risk_stub.GetTradingState(risk_pb2.GetTradingStateRequest())
    assert len(first.trading_state.reason) == 32
    assert first.trading_state.reason != second.trading_state.reason


async def test_stream_error_after_messages_keeps_its_status(
    risk_stub: risk_pb2_grpc.RiskServiceAsyncStub,
) -> None:
    call: Any = risk_stub.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
    assert (await call.read()).event.message == "first"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_details_pb2.ErrorInfo()
    assert _status_of(raised.value).details[0].Unpack(info)
    assert info.reason == "TRADING_HALTED"


def _raw(payload: bytes) -> bytes:
    return payload


@pytest.mark.parametrize("streaming", [False, True])
async def test_bytes_that_do_not_parse_are_invalid_argument(streaming: bool) -> None:
    """Not UNKNOWN with the parser's text: the caller sent a broken message."""
    servicer = ScriptedRisk()  # type: ignore[abstract]
    async with (
        serving(servicer, risk_pb2_grpc.add_RiskServiceServicer_to_server) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        service = "/edgequant.risk.v1.RiskService"
        call = (
            channel.unary_stream(f"{service}/StreamRiskEvents", _raw, _raw)(b"\x0f").read()
            if streaming
            else channel.unary_unary(f"{service}/GetTradingState", _raw, _raw)(b"\x08\xff")
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = _status_of(raised.value).details
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert details[0].Unpack(info)
    assert info.reason == "MALFORMED_REQUEST"
    assert details[1].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "request"
