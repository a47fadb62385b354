"""Every gateway route needs a token with the right scope, except the few that are
public on purpose; the routes are read from the application itself, not listed here.

The gateway serves two kinds of route (gateway/app.py): fixed Starlette routes, and a
catch-all that proxies every annotated RPC. The RPC operations are those of the
OpenAPI document the same application serves (it is built from the same bindings as
the router). Public by design, and documented in gateway/app.py: /healthz (a load
balancer probe), /metrics (Prometheus; the gateway is meant to be bound where only the
operator reaches it), /openapi.json and the /docs page with its static assets (the
contract is no secret; every call the page makes still needs a token). The gateway's own
routes that need a token (/v1/whoami) are documented in /openapi.json with their scope,
so the per-route test covers them as it covers the RPCs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from common.config import SERVICE_NAMES
from common.testing import isolated_config
from gateway.app import create_app
from gateway.auth import SCOPES, digest
from gateway.testing import Recorder, config_with, recording, serve_gateway

PUBLIC = {"/healthz", "/metrics", "/openapi.json", "/docs", "/docs/init.js", "/docs/assets"}
# Fixed routes of the gateway's own that need a token, each in /openapi.json with its scope.
OWN = {"/v1/whoami"}
# One token per combination that lacks exactly one scope: a call needing scope S is made
# with the token holding every scope but S, the largest token that must still be refused.
TOKENS = {f"without-{scope}": [other for other in SCOPES if other != scope] for scope in SCOPES}


def _secret(name: str) -> str:
    return f"eq-security-{name}"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Recorder, httpx.AsyncClient]]:
    entries = ",".join(
        f"{name}:{digest(_secret(name))}:{'+'.join(scopes)}" for name, scopes in TOKENS.items()
    )
    environment = isolated_config(tmp_path, GATEWAY__AUTH__TOKENS=entries)
    async with recording() as (recorder, address):
        addresses = {f"{name.upper()}__ADDRESS": address for name in SERVICE_NAMES}
        config = config_with(environment, GATEWAY__LIMITS__RATE_PER_SECOND="100000", **addresses)
        async with serve_gateway(config) as client:
            yield recorder, client


def _fixed_paths(tmp_path: Path) -> list[str]:
    """The application's own routes, but the catch-all RPC proxy."""
    app = create_app(config_with(isolated_config(tmp_path / "app")))
    paths = []
    for route in app.routes:
        if (isinstance(route, Route) and "{" not in route.path) or isinstance(route, Mount):
            paths.append(route.path)
    return paths


def _operations(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, concrete path, required scope) of every RPC operation."""
    operations = []
    for template, methods in document["paths"].items():
        if template in PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "x1", template)
        for method, operation in methods.items():
            operations.append((method.upper(), path, operation["x-required-scope"]))
    return operations


async def test_only_the_documented_routes_are_public(
    gateway: tuple[Recorder, httpx.AsyncClient], tmp_path: Path
) -> None:
    _, client = gateway
    fixed = _fixed_paths(tmp_path)
    assert set(fixed) == PUBLIC | OWN, "a fixed route was added or removed: is it public?"
    for path in PUBLIC:
        probe = f"{path}/swagger-ui.css" if path == "/docs/assets" else path
        response = await client.get(probe)
        assert response.status_code != 401, path


async def test_every_rpc_route_is_401_without_a_token_and_403_without_its_scope(
    gateway: tuple[Recorder, httpx.AsyncClient],
) -> None:
    recorder, client = gateway
    operations = _operations((await client.get("/openapi.json")).json())
    assert len(operations) > 40  # every annotated RPC, not a few
    assert {path for _, path, _ in operations} >= OWN  # and the gateway's own
    wrong = []
    for method, path, scope in operations:
        anonymous = await client.request(method, path, json={})
        if anonymous.status_code != 401:
            wrong.append(f"{method} {path} without a token: {anonymous.status_code}")
        token = {"Authorization": f"Bearer {_secret(f'without-{scope}')}"}
        unscoped = await client.request(method, path, json={}, headers=token)
        if unscoped.status_code != 403:
            wrong.append(f"{method} {path} without {scope!r}: {unscoped.status_code}")
    assert wrong == []
    assert recorder.calls == []  # nothing reached a service


async def test_a_wrong_token_in_the_query_is_401_too(
    gateway: tuple[Recorder, httpx.AsyncClient],
) -> None:
    _, client = gateway
    response = await client.get("/v1/venues", params={"access_token": "not-a-token"})
    assert response.status_code == 401
