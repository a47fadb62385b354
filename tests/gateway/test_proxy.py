"""Every annotated RPC is reachable through the gateway with the right method and path,
and its request arrives with the fields the path, query and body carry."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import Response

from common.config import Config
from common.server import RunningService
from gateway.app import Gateway, create_app
from gateway.auth import Authenticator
from gateway.bindings import Binding, bindings_of, service_descriptors
from gateway.observability import Metrics
from gateway.proxy import RpcProxy
from gateway.ratelimit import RateLimiter
from gateway.routing import Router
from gateway.settings import settings_of
from gateway.streaming import Streams
from gateway.templates import Variable
from gateway.testing import Recorder, bearer
from gateway.upstream import Upstream

BINDINGS = bindings_of(service_descriptors())


@pytest.fixture
async def recorded(
    gateway_to_recorder: Any,
) -> AsyncIterator[tuple[Recorder, httpx.AsyncClient]]:
    async with gateway_to_recorder() as (recorder, client):
        client.headers.update(bearer("admin"))
        yield recorder, client


def _example_path(binding: Binding) -> str:
    """The binding's template with a value in each variable ('BTC/USDT' where '**')."""
    parts = []
    for segment in binding.template.segments:
        if isinstance(segment, Variable):
            parts.append("BTC/USDT" if "**" in segment.pattern else "x-1")
        else:
            parts.append(segment)
    verb = f":{binding.template.verb}" if binding.template.verb else ""
    return "/" + "/".join(parts) + verb


async def test_every_binding_reaches_its_rpc(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    """Each binding of each annotated RPC (additional bindings too), by its method and a
    path made from its template, reaches that RPC with the path variables set."""
    recorder, client = recorded
    assert len(BINDINGS) > len({b.rpc.full_name for b in BINDINGS}) >= 40
    for binding in BINDINGS:
        label = f"{binding.http_method} {binding.template.text}"
        body = b"{}" if binding.body else None
        response = await client.request(binding.http_method, _example_path(binding), content=body)
        assert response.status_code == 200, f"{label}: {response.text}"
        name, request, _ = recorder.last()
        assert name == binding.rpc.full_name, label
        for variable in binding.template.variables:
            expected = "BTC/USDT" if "**" in variable.pattern else "x-1"
            assert getattr(request, variable.field_path) == expected, label


# (method, path, query, body, RPC, the request the service must receive)
CASES: list[tuple[str, str, Any, Any, str, dict[str, Any]]] = [
    (
        "GET",
        "/v1/venues/paper/tickers/BTC/USDT",
        None,
        None,
        "ExchangeService.GetTicker",
        {"venue": "paper", "symbol": "BTC/USDT"},
    ),
    (
        "GET",
        "/v1/venues/paper/tickers/BTC%2FUSDT",
        None,
        None,
        "ExchangeService.GetTicker",
        {"venue": "paper", "symbol": "BTC/USDT"},
    ),
    (  # a perpetual's unified symbol holds a colon: not a verb
        "GET",
        "/v1/venues/paper/tickers/BTC/USDT:USDT",
        None,
        None,
        "ExchangeService.GetTicker",
        {"venue": "paper", "symbol": "BTC/USDT:USDT"},
    ),
    (
        "GET",
        "/v1/venues/paper/client-orders/my-order-1",
        None,
        None,
        "ExchangeService.GetOrder",
        {"venue": "paper", "client_order_id": "my-order-1"},
    ),
    (
        "GET",
        "/v1/orders/o-42",
        None,
        None,
        "ExchangeService.GetOrder",
        {"order_id": "o-42"},
    ),
    (
        "POST",
        "/v1/orders/o-42:cancel",
        None,
        {},
        "ExchangeService.CancelOrder",
        {"order_id": "o-42"},
    ),
    (
        "POST",
        "/v1/orders:cancelAll",
        None,
        {"venue": "paper", "symbol": "ETH/USDT"},
        "ExchangeService.CancelAllOrders",
        {"venue": "paper", "symbol": "ETH/USDT"},
    ),
    (
        "POST",
        "/v1/orders",
        None,
        {
            "venue": "paper",
            "symbol": "BTC/USDT",
            "side": "SIDE_BUY",
            "type": "ORDER_TYPE_LIMIT",
            "quantity": "0.01",
            "price": "60000.00",
            "clientOrderId": "my-order-1",
            "post_only": True,
        },
        "ExchangeService.SubmitOrder",
        {
            "venue": "paper",
            "symbol": "BTC/USDT",
            "side": "SIDE_BUY",
            "type": "ORDER_TYPE_LIMIT",
            "quantity": "0.01",
            "price": "60000.00",
            "client_order_id": "my-order-1",
            "post_only": True,
        },
    ),
    (  # repeated query parameter, enum by name and by number, int32 as text
        "GET",
        "/v1/orders",
        [
            ("venue", "paper"),
            ("statuses", "ORDER_STATUS_OPEN"),
            ("statuses", "4"),
            ("pageSize", "10"),
        ],
        None,
        "ExchangeService.ListOrders",
        {
            "venue": "paper",
            "statuses": ["ORDER_STATUS_OPEN", "ORDER_STATUS_FILLED"],
            "page_size": 10,
        },
    ),
    (  # well-known types from the query: Timestamp as RFC 3339
        "GET",
        "/v1/venues/paper/candles/BTC/USDT",
        {"timeframe": "TIMEFRAME_1H", "start_time": "2024-01-01T00:00:00Z", "limit": "5"},
        None,
        "ExchangeService.GetCandles",
        {
            "venue": "paper",
            "symbol": "BTC/USDT",
            "timeframe": "TIMEFRAME_1H",
            "start_time": "2024-01-01T00:00:00Z",
            "limit": 5,
        },
    ),
    (  # int64 as a string, beyond what a JSON number holds exactly
        "GET",
        "/v1/executions:stream",
        {"afterSeq": "9007199254740993"},
        None,
        "ExchangeService.StreamExecutions",
        {"after_seq": "9007199254740993"},
    ),
    (  # batched executions, asked for from the query
        "GET",
        "/v1/executions:stream",
        {"afterSeq": "5", "maxBatch": "100"},
        None,
        "ExchangeService.StreamExecutions",
        {"after_seq": "5", "max_batch": 100},
    ),
    (  # a named body ("limits") and the rest of the request from the query
        "PATCH",
        "/v1/risk/limits",
        {"update_mask": "maxLeverage,allowedSymbols"},
        {"maxLeverage": "3", "allowedSymbols": ["BTC/USDT"]},
        "RiskService.UpdateLimits",
        {
            "limits": {"max_leverage": "3", "allowed_symbols": ["BTC/USDT"]},
            "update_mask": "maxLeverage,allowedSymbols",
        },
    ),
    (
        "PUT",
        "/v1/risk/trading-state",
        None,
        {"state": "TRADING_STATE_HALTED", "reason": "maintenance"},
        "RiskService.SetTradingState",
        {"state": "TRADING_STATE_HALTED", "reason": "maintenance"},
    ),
    (  # one venue account's limits: the account from the query, the limits from the body
        "PATCH",
        "/v1/risk/limits",
        {"accountId": "okx-live", "update_mask": "maxOpenOrders"},
        {"maxOpenOrders": 5},
        "RiskService.UpdateLimits",
        {
            "limits": {"max_open_orders": 5},
            "update_mask": "maxOpenOrders",
            "account_id": "okx-live",
        },
    ),
    (
        "GET",
        "/v1/risk/limits",
        {"accountId": "okx-live"},
        None,
        "RiskService.GetLimits",
        {"account_id": "okx-live"},
    ),
    (  # one venue account's kill switch
        "PUT",
        "/v1/risk/trading-state",
        None,
        {"state": "TRADING_STATE_HALTED", "accountId": "okx-live"},
        "RiskService.SetTradingState",
        {"state": "TRADING_STATE_HALTED", "account_id": "okx-live"},
    ),
    (
        "DELETE",
        "/v1/datasets/d-7",
        None,
        None,
        "BacktestService.DeleteDataset",
        {"dataset_id": "d-7"},
    ),
    (
        "POST",
        "/v1/accounts/main/fills:import",
        None,
        {"content": "time,symbol\n"},
        "PortfolioService.ImportFills",
        {"account_id": "main", "content": "time,symbol\n"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
async def test_path_query_and_body_fill_the_request(
    recorded: tuple[Recorder, httpx.AsyncClient],
    case: tuple[str, str, Any, Any, str, dict[str, Any]],
) -> None:
    recorder, client = recorded
    method, path, query, body, rpc, expected = case
    response = await client.request(method, path, params=query, json=body)
    assert response.status_code == 200, response.text
    name, request, metadata = recorder.last()
    assert name.endswith(rpc)
    want = json_format.ParseDict(expected, type(request)())
    assert request == want
    assert metadata["x-actor"] == "admin"
    assert metadata["x-request-id"] == response.headers["x-request-id"]


async def test_request_id_and_deadline_reach_the_service(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    recorder, client = recorded
    response = await client.get(
        "/v1/risk/limits", headers={"x-request-id": "trace-7", "grpc-timeout": "2S"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-7"
    _, _, metadata = recorder.last()
    assert metadata["x-request-id"] == "trace-7"
    # grpc.aio turns the deadline into the grpc-timeout the server sees.
    assert "grpc-timeout" not in metadata or metadata["grpc-timeout"]


async def test_response_is_the_json_mapping_with_every_field(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    response = await client.get("/v1/orders")
    assert response.headers["content-type"] == "application/json"
    # Zero values are written too, so a client sees one shape: lowerCamelCase names.
    assert response.json() == {"orders": [], "nextPageToken": ""}


async def test_unknown_json_field_is_400_naming_it(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    recorder, client = recorded
    response = await client.post(
        "/v1/orders", json={"venue": "paper", "quantityy": "1", "side": "SIDE_BUY"}
    )
    assert response.status_code == 400
    status = response.json()
    assert status["code"] == 3
    violations = _violations(status)
    assert violations == [{"field": "quantityy", "description": "unknown field"}]
    assert recorder.calls == []  # bad input never reaches a service


async def test_unknown_nested_field_and_query_parameter_are_named(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    recorder, client = recorded
    response = await client.patch(
        "/v1/risk/limits?colour=red",
        json={"symbolLimits": {"BTC/USDT": {"maxPositionQuantity": "1", "nope": 2}}},
    )
    assert response.status_code == 400
    fields = {v["field"] for v in _violations(response.json())}
    assert fields == {"limits.symbol_limits[BTC/USDT].nope", "colour"}
    assert recorder.calls == []


async def test_a_value_of_the_wrong_type_is_400(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    response = await client.post("/v1/orders", json={"side": "SIDE_SIDEWAYS"})
    assert response.status_code == 400
    assert _violations(response.json())[0]["field"] == "side"
    response = await client.post("/v1/orders", content=b"{not json")
    assert response.status_code == 400
    assert _violations(response.json())[0]["field"] == "body"


async def test_unbound_path_is_404_and_wrong_method_405(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    response = await client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["code"] == 5
    response = await client.delete("/v1/orders")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    assert response.json()["code"] == 12


async def test_running_services_answer_every_rpc_or_unimplemented_as_501(
    services: list[RunningService], config: Config, gateway_for: Any
) -> None:
    """Against the four real services: every binding reaches its RPC. RPCs whose issue
    has not landed answer UNIMPLEMENTED, which must come back as 501 with the Status
    body naming that RPC; the others answer through the gateway without a 5xx."""
    async with gateway_for(config) as client:
        for binding in BINDINGS:
            label = f"{binding.http_method} {binding.template.text}"
            # A live stream never ends: its status line and headers are the answer.
            async with client.stream(
                binding.http_method,
                _example_path(binding),
                content=b"{}" if binding.body else None,
                headers={**bearer("admin"), "accept": "application/x-ndjson"},
            ) as response:
                if binding.rpc.server_streaming and response.status_code == 200:
                    continue
                await response.aread()
            if response.status_code == 501:
                status = response.json()
                info = _detail(status, "google.rpc.ErrorInfo")
                assert status["code"] == 12, label
                assert info["reason"] == "NOT_YET_IMPLEMENTED", label
                assert info["metadata"]["rpc"].endswith(binding.rpc.method.name), label
            else:
                assert response.status_code < 500, f"{label}: {response.text}"
                if response.status_code in (404, 405):
                    reason = _detail(response.json(), "google.rpc.ErrorInfo")["reason"]
                    assert reason not in ("NO_ROUTE", "METHOD_NOT_ALLOWED"), label


def _detail(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [d for d in status.get("details", []) if d["@type"].endswith(kind)]
    assert found, f"no {kind} in {json.dumps(status)}"
    detail: dict[str, Any] = found[0]
    return detail


def _violations(status: dict[str, Any]) -> list[dict[str, str]]:
    violations: list[dict[str, str]] = _detail(status, "google.rpc.BadRequest")["fieldViolations"]
    return violations


class _Failing(RpcProxy):
    """A proxy with a bug: every request raises before an answer starts."""

    async def _handle(self, request: Request) -> Response:
        raise RuntimeError("a bug")


async def test_a_bug_on_the_rpc_path_answers_an_internal_status_with_the_request_id(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(config)
    proxy = _Failing(
        Router(bindings_of(service_descriptors())),
        Upstream({}, [], config.grpc),
        Authenticator(False, []),
        RateLimiter(10, 10),
        settings_of(config.gateway),
        streams=Streams(),
    )
    gateway = Gateway(app.fixed, proxy.asgi, Metrics(), settings_of(config.gateway))
    transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="edgequant.gateway"):
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.get("/v1/venues", headers={"x-request-id": "trace-500"})
    assert response.status_code == 500
    assert response.json()["code"] == 13
    assert response.json()["message"] == "internal error"  # nothing of the bug leaves
    assert response.headers["x-request-id"] == "trace-500"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert any("a bug" in str(record.exc_info) for record in caplog.records)
