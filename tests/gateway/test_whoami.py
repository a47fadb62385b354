"""GET /v1/whoami: the presented token's name, scopes and expiry, answered by the gateway
itself (no service is called), never the token or its digest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway import openapi
from gateway.auth import digest
from gateway.bindings import bindings_of, service_descriptors
from gateway.testing import TOKENS, Recorder, bearer, token_entries

EXPIRING = ("eq-test-expiring", "2099-01-02T03:04:05+00:00")


@pytest.fixture
async def recorded(
    gateway_to_recorder: Any,
) -> AsyncIterator[tuple[Recorder, httpx.AsyncClient]]:
    token, expires = EXPIRING
    entries = f"{token_entries()},expiring:{digest(token)}:read+trade:{expires}"
    async with gateway_to_recorder(GATEWAY__AUTH__TOKENS=entries) as (recorder, client):
        yield recorder, client


async def test_whoami_answers_the_tokens_name_scopes_and_expiry(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    recorder, client = recorded
    reader = await client.get("/v1/whoami", headers=bearer("reader"))
    assert reader.status_code == 200
    assert reader.json() == {"name": "reader", "scopes": ["read"], "expires_at": None}
    assert reader.headers["cache-control"] == "no-store"
    admin = await client.get("/v1/whoami", headers=bearer("admin"))
    assert admin.json()["scopes"] == ["read", "trade", "admin"]
    expiring = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {EXPIRING[0]}"})
    assert expiring.json() == {
        "name": "expiring",
        "scopes": ["read", "trade"],
        "expires_at": "2099-01-02T03:04:05Z",
    }
    for response, token in ((reader, TOKENS["reader"][0]), (expiring, EXPIRING[0])):
        assert token not in response.text
        assert digest(token) not in response.text
    assert recorder.calls == []  # the gateway answers it alone


async def test_whoami_refuses_missing_expired_and_unscoped_tokens(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    missing = await client.get("/v1/whoami")
    assert missing.status_code == 401
    assert missing.json()["details"][0]["reason"] == "MISSING_TOKEN"
    expired = await client.get("/v1/whoami", headers=bearer("expired"))
    assert expired.status_code == 401
    assert expired.json()["details"][0]["reason"] == "TOKEN_EXPIRED"
    wrong = await client.get("/v1/whoami", headers={"Authorization": "Bearer nope"})
    assert wrong.json()["details"][0]["reason"] == "INVALID_TOKEN"


async def test_whoami_is_get_only_with_a_status_body(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = recorded
    response = await client.post("/v1/whoami", headers=bearer("admin"), json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["details"][0]["reason"] == "METHOD_NOT_ALLOWED"


async def test_whoami_is_rate_limited_like_the_rpcs(gateway_to_recorder: Any) -> None:
    async with gateway_to_recorder(
        GATEWAY__LIMITS__BURST="2", GATEWAY__LIMITS__RATE_PER_SECOND="0.001"
    ) as (_, client):
        statuses = [
            (await client.get("/v1/whoami", headers=bearer("reader"))).status_code for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


async def test_with_auth_off_the_caller_is_anonymous_with_every_scope(
    gateway_to_recorder: Any,
) -> None:
    async with gateway_to_recorder(GATEWAY__AUTH__ENABLED="false") as (_, client):
        response = await client.get("/v1/whoami")
    assert response.json() == {
        "name": "anonymous",
        "scopes": ["read", "trade", "admin"],
        "expires_at": None,
    }


def test_whoami_is_documented_with_its_scope() -> None:
    document = openapi.document(bindings_of(service_descriptors()), "EdgeQuant", "v1", {})
    operation = document["paths"]["/v1/whoami"]["get"]
    assert operation["x-required-scope"] == "read"
    assert "security" not in operation  # the document's bearer schemes apply
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"name", "scopes", "expires_at"}
