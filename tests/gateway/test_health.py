"""/healthz aggregates grpc.health.v1 of every service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from common.config import SERVICE_NAMES, Config
from common.server import RunningService
from gateway.app import create_app


@pytest.fixture
async def gateway(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client,
    ):
        yield client


async def test_serving_when_every_service_serves(
    services: list[RunningService], gateway: httpx.AsyncClient
) -> None:
    response = await gateway.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "SERVING",
        "services": dict.fromkeys(SERVICE_NAMES, "SERVING"),
    }


async def test_a_service_down_gives_503(gateway: httpx.AsyncClient) -> None:
    # Each probe carries gateway.health_timeout_seconds as its gRPC deadline: no hang.
    response = await gateway.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "NOT_SERVING"
    assert set(body["services"]) == set(SERVICE_NAMES)
    assert all(status.startswith("UNREACHABLE") for status in body["services"].values())
