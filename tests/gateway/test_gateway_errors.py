"""gRPC status -> HTTP status by the canonical table, the body a google.rpc.Status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from common.testing import free_port, serving
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.errors import HTTP_STATUS
from gateway.testing import bearer, config_with

# DESIGN.md, Gateway: the table grpc-gateway and Envoy share.
TABLE = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
}


class FailingExchange(exchange_pb2_grpc.ExchangeServiceServicer):
    """GetTicker fails with the status code named by the symbol."""

    async def GetTicker(
        self, request: exchange_pb2.GetTickerRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> exchange_pb2.GetTickerResponse:
        if request.symbol == "FUNDS":
            raise FailedPrecondition("not enough USDT", reason="INSUFFICIENT_FUNDS")
        if request.symbol == "BAD":
            raise InvalidArgument([FieldViolation("symbol", "unknown market")])
        await context.abort(grpc.StatusCode[request.symbol], f"failed with {request.symbol}")
        raise AssertionError("unreachable")


@pytest.fixture
async def client(environment: dict[str, str], gateway_for: Any) -> AsyncIterator[httpx.AsyncClient]:
    servicer = FailingExchange()  # type: ignore[abstract]
    add = exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
    async with serving(servicer, add) as address:
        config = config_with(environment, EXCHANGE__ADDRESS=address)
        async with gateway_for(config) as client:
            client.headers.update(bearer("reader"))
            yield client


def test_the_table_is_the_canonical_one() -> None:
    assert {code.name: HTTP_STATUS[code] for code in HTTP_STATUS if code.name != "OK"} == TABLE


@pytest.mark.parametrize(("code", "http_status"), TABLE.items())
async def test_each_code_maps_to_its_http_status(
    client: httpx.AsyncClient, code: str, http_status: int
) -> None:
    response = await client.get(f"/v1/venues/paper/tickers/{code}")
    assert response.status_code == http_status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == grpc.StatusCode[code].value[0]
    assert response.json()["message"] == f"failed with {code}"


async def test_details_come_through_as_typed_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/venues/paper/tickers/FUNDS")
    assert response.status_code == 400
    assert response.json() == {
        "code": 9,
        "message": "not enough USDT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "INSUFFICIENT_FUNDS",
                "domain": "edgequant",
            }
        ],
    }
    response = await client.get("/v1/venues/paper/tickers/BAD")
    details = {d["@type"].rsplit(".", 1)[1]: d for d in response.json()["details"]}
    assert details["BadRequest"]["fieldViolations"] == [
        {"field": "symbol", "description": "unknown market"}
    ]


async def test_a_service_that_is_down_gives_503(
    environment: dict[str, str], gateway_for: Any
) -> None:
    # Nothing listens there; the call must not wait for the 30 s default deadline
    # (the client's own timeout is 10 s).
    config = config_with(environment, EXCHANGE__ADDRESS=f"127.0.0.1:{free_port()}")
    async with gateway_for(config) as client:
        for _ in range(2):  # the first attempt and one during the channel's backoff
            response = await client.get(
                "/v1/venues/paper/tickers/BTC/USDT", headers=bearer("reader")
            )
            assert response.status_code == 503
            assert response.json()["code"] == 14


async def test_a_deadline_from_the_client_gives_504(
    environment: dict[str, str], gateway_for: Any
) -> None:
    servicer = SlowExchange()  # type: ignore[abstract]
    add = exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
    async with serving(servicer, add) as address:
        config = config_with(environment, EXCHANGE__ADDRESS=address)
        async with gateway_for(config) as client:
            response = await client.get(
                "/v1/venues", headers={**bearer("reader"), "grpc-timeout": "50m"}
            )
            assert response.status_code == 504
            assert response.json()["code"] == 4
            bad = await client.get(
                "/v1/venues", headers={**bearer("reader"), "grpc-timeout": "soon"}
            )
            assert bad.status_code == 400


class SlowExchange(exchange_pb2_grpc.ExchangeServiceServicer):
    async def ListVenues(
        self, request: exchange_pb2.ListVenuesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> exchange_pb2.ListVenuesResponse:
        await asyncio.sleep(5)
        return exchange_pb2.ListVenuesResponse()
