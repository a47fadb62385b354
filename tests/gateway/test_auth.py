"""Bearer tokens with scopes: 401 without a valid token, 403 without the scope, the
token's name passed on as x-actor; tokens kept hashed, from a 0600 file or the
environment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.config import ConfigError
from gateway.auth import ADMIN, READ, TRADE, load_tokens, required_scope
from gateway.bindings import bindings_of, service_descriptors
from gateway.settings import AuthSettings
from gateway.testing import Recorder, bearer
from gateway.tokens import entry, new_token

SCOPE_OF = {
    f"{b.rpc.method.name} {b.http_method}": required_scope(b)
    for b in bindings_of(service_descriptors())
}


@pytest.fixture
async def recorded(
    gateway_to_recorder: Any,
) -> AsyncIterator[tuple[Recorder, httpx.AsyncClient]]:
    async with gateway_to_recorder() as (recorder, client):
        yield recorder, client


def test_scopes_follow_the_rule() -> None:
    assert SCOPE_OF["SubmitOrder POST"] == TRADE
    assert SCOPE_OF["CancelOrder POST"] == TRADE
    assert SCOPE_OF["CancelAllOrders POST"] == TRADE
    # A real pre-trade check spends the account's rate budget: not for read tokens.
    assert SCOPE_OF["CheckOrder POST"] == TRADE
    for admin in ("UpdateLimits PATCH", "SetTradingState PUT", "ImportDataset POST",
                  "DeleteDataset DELETE", "SubmitBacktest POST", "CancelJob POST",
                  "ImportFills POST"):  # fmt: skip
        assert SCOPE_OF[admin] == ADMIN, admin
    for read in ("GetTicker GET", "StreamTickers GET", "ComputeVaR POST",
                 "RunStressTest POST", "GetLimits GET"):  # fmt: skip
        assert SCOPE_OF[read] == READ, read


async def test_missing_token_is_401_with_a_status_body(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    recorder, client = recorded
    response = await client.get("/v1/venues")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == 16
    assert response.json()["details"][0]["reason"] == "MISSING_TOKEN"
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        ("Bearer not-a-token", "INVALID_TOKEN"),
        ("Basic ZXEtdGVzdC1hZG1pbg==", "MISSING_TOKEN"),
        ("Bearer eq-test-expired", "TOKEN_EXPIRED"),
    ],
)
async def test_wrong_and_expired_tokens_are_401(
    recorded: tuple[Recorder, httpx.AsyncClient], authorization: str, reason: str
) -> None:
    recorder, client = recorded
    response = await client.get("/v1/venues", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["details"][0]["reason"] == reason
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("token", "method", "path", "body"),
    [
        ("reader", "POST", "/v1/orders", {"venue": "paper"}),
        ("reader", "POST", "/v1/orders:cancelAll", {}),
        ("trader", "PUT", "/v1/risk/trading-state", {"state": "TRADING_STATE_HALTED"}),
        ("trader", "PATCH", "/v1/risk/limits", {"maxLeverage": "2"}),
        ("trader", "DELETE", "/v1/datasets/d-1", None),
    ],
)
async def test_a_token_without_the_scope_is_403(
    recorded: tuple[Recorder, httpx.AsyncClient],
    token: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    recorder, client = recorded
    response = await client.request(method, path, json=body, headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["code"] == 7
    assert response.json()["details"][0]["reason"] == "INSUFFICIENT_SCOPE"
    assert recorder.calls == []


async def test_the_scope_lets_the_call_through_with_the_token_name_as_actor(
    recorded: tuple[Recorder, httpx.AsyncClient],
) -> None:
    recorder, client = recorded
    response = await client.post("/v1/orders", json={"venue": "paper"}, headers=bearer("trader"))
    assert response.status_code == 200
    response = await client.put(
        "/v1/risk/trading-state", json={"state": "TRADING_STATE_HALTED"}, headers=bearer("admin")
    )
    assert response.status_code == 200
    _, _, metadata = recorder.last()
    assert metadata["x-actor"] == "admin"  # risk records who halted trading


async def test_healthz_needs_no_token(recorded: tuple[Recorder, httpx.AsyncClient]) -> None:
    _, client = recorded
    response = await client.get("/healthz")
    assert response.status_code in (200, 503)
    assert "services" in response.json()


def test_tokens_file_must_be_private(tmp_path: Path) -> None:
    token = new_token()
    path = tmp_path / "tokens.toml"
    path.write_text(entry("ui", token, ["read", "trade"], None) + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_tokens(AuthSettings(tokens_file=str(path)))
    path.chmod(0o600)
    [loaded] = load_tokens(AuthSettings(tokens_file=str(path)))
    assert loaded.name == "ui"
    assert loaded.scopes == {"read", "trade"}
    assert token.encode() not in path.read_bytes()  # only the digest is kept


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        (("ui:abc:read",), "64 hex digits"),
        ((f"ui:{'0' * 64}:read+fly",), "scopes must be among"),
        ((f"ui:{'0' * 64}:read:tomorrow",), "RFC 3339"),
        ((f"ui:{'0' * 64}:read", f"ui:{'1' * 64}:read"), "appears twice"),
    ],
)
def test_bad_token_entries_stop_the_start(tokens: tuple[str, ...], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_tokens(AuthSettings(tokens=tokens))
