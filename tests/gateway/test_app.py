"""What wraps every request: body limit (413), per-token rate limit (429), CORS,
security headers, request id, metrics, the JSON access log, the OpenAPI document and
its documentation page."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.logs import JsonFormatter
from gateway.testing import Recorder, bearer

UI = "http://192.168.1.20:3000"


@pytest.fixture
async def recorded(
    gateway_to_recorder: Any,
) -> AsyncIterator[tuple[Recorder, httpx.AsyncClient]]:
    async with gateway_to_recorder(
        GATEWAY__CORS__ALLOW_ORIGINS=UI,
        GATEWAY__LIMITS__MAX_BODY_BYTES="1024",
        GATEWAY__LIMITS__RATE_PER_SECOND="0.1",
        GATEWAY__LIMITS__BURST="5",
    ) as (recorder, client):
        yield recorder, client


async def test_a_body_over_the_limit_is_413(recorded: tuple[Recorder, httpx.AsyncClient]) -> None:
    recorder, client = recorded
    big = {"venue": "paper", "clientOrderId": "x" * 2000}
    response = await client.post("/v1/orders", json=big, headers=bearer("trader"))
    assert response.status_code == 413
    assert response.json()["details"][0]["reason"] == "BODY_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
        for _ in range(4):
            yield b" " * 400

    response = await client.post("/v1/orders", content=chunks(), headers=bearer("trader"))
    assert response.status_code == 413
    assert recorder.calls == []


async def test_over_the_rate_is_429_with_retry_after_per_token(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    statuses = [(await client.get("/v1/venues", headers=bearer("reader"))) for _ in range(6)]
    assert [r.status_code for r in statuses] == [200] * 5 + [429]
    limited = statuses[-1]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["code"] == 8
    assert limited.json()["details"][0]["reason"] == "RATE_LIMITED"
    # Another token has its own budget.
    assert (await client.get("/v1/venues", headers=bearer("trader"))).status_code == 200


async def test_cors_preflight_from_an_allowed_origin(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    response = await client.options(
        "/v1/orders",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == UI
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    # The actual request then carries the origin back, with the headers the UI may read.
    actual = await client.get("/v1/venues", headers={"Origin": UI, **bearer("reader")})
    assert actual.headers["access-control-allow-origin"] == UI
    assert "x-request-id" in actual.headers["access-control-expose-headers"]


async def test_cors_preflight_from_another_origin_is_refused(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    response = await client.options(
        "/v1/orders",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    actual = await client.get(
        "/v1/venues", headers={"Origin": "http://evil.test", **bearer("reader")}
    )
    assert "access-control-allow-origin" not in actual.headers


async def test_security_headers_and_request_id_on_every_response(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    for response in (
        await client.get("/v1/venues", headers=bearer("reader")),
        await client.get("/v1/venues"),  # 401
        await client.get("/nowhere"),  # 404
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert len(response.headers["x-request-id"]) == 32  # generated when absent


async def test_metrics_count_requests_by_route_and_status(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    await client.get("/v1/venues/paper/tickers/BTC/USDT", headers=bearer("reader"))
    await client.get("/v1/venues")
    text = (await client.get("/metrics")).text
    assert (
        'edgequant_gateway_requests_total{method="GET",'
        'route="GET /v1/venues/{venue}/tickers/{symbol=**}",status="200"} 1.0'
    ) in text
    assert 'route="GET /v1/venues",status="401"} 1.0' in text
    assert "edgequant_gateway_request_duration_seconds_bucket" in text
    # The whole page is valid Prometheus text (prometheus_client's parser as the oracle).
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["edgequant_gateway_requests"].type == "counter"
    assert families["edgequant_gateway_request_duration_seconds"].type == "histogram"
    (in_flight,) = families["edgequant_gateway_requests_in_flight"].samples
    assert in_flight.value == 1  # the /metrics request itself


async def test_access_log_is_one_json_record_per_request_without_the_query(
    recorded: tuple[Recorder, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = recorded
    with caplog.at_level(logging.INFO, logger="edgequant.gateway.access"):
        await client.get(
            "/v1/venues?access_token=secret-token", headers={"x-request-id": "trace-9"}
        )
    [record] = [r for r in caplog.records if r.name == "edgequant.gateway.access"]
    assert record.__dict__["status"] == 401
    assert record.__dict__["path"] == "/v1/venues"
    assert record.__dict__["route"] == "GET /v1/venues"
    line = json.loads(JsonFormatter("gateway").format(record))
    assert line["request_id"] == "trace-9"
    assert line["status"] == 401
    assert "secret-token" not in json.dumps(line)


async def test_documentation_page_and_its_assets_are_served_locally(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "http" not in page.text.split("<body>")[1]  # nothing from a CDN
    assert "script-src" not in page.headers["content-security-policy"]  # 'self' only
    bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 100_000
    init = await client.get("/docs/init.js")
    assert "/openapi.json" in init.text


async def test_a_path_with_a_newline_reaches_the_proxy(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    """Starlette's path pattern stops at a newline; such a path is still an RPC's (found
    by schemathesis: it was a text/plain 404 before)."""
    recorder, client = recorded
    anonymous = await client.get("/v1/venues/a%0Ab/markets")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/json"
    response = await client.get("/v1/venues/a%0Ab/markets", headers=bearer("reader"))
    assert response.status_code == 200
    assert recorder.last()[1].venue == "a\nb"  # type: ignore[attr-defined]


async def test_a_method_no_rpc_is_bound_to_is_a_status_405_on_the_rpc_path(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    """RPC paths go to the proxy whatever the method: an OPTIONS that is no preflight
    answers a google.rpc.Status naming the methods bound, with the usual headers."""
    _, client = recorded
    response = await client.options("/v1/orders", headers=bearer("trader"))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    assert response.json()["details"][0]["reason"] == "METHOD_NOT_ALLOWED"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.headers["x-request-id"]) == 32


async def test_a_client_request_id_is_echoed_and_reaches_the_service(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    recorder, client = recorded
    response = await client.get(
        "/v1/venues/paper/tickers/BTC/USDT",
        headers={**bearer("reader"), "x-request-id": "trace-7"},
    )
    assert response.status_code == 200
    assert response.headers.get_list("x-request-id") == ["trace-7"]
    assert recorder.last()[2]["x-request-id"] == "trace-7"
