"""A client_order_id reused for another order is 409 through the gateway, against the
real services; the same order again answers as the first time."""

from __future__ import annotations

from typing import Any

import httpx

from common.config import Config
from common.server import RunningService
from gateway.testing import bearer

ORDER = {
    "venue": "paper",
    "symbol": "BTC/USDT",
    "side": "SIDE_BUY",
    "type": "ORDER_TYPE_MARKET",
    "quantity": "0.01",
    "clientOrderId": "gw-reused",
}


async def test_a_reused_client_order_id_with_other_parameters_is_409(
    services: list[RunningService], config: Config, gateway_for: Any
) -> None:
    async with gateway_for(config) as client:
        client.headers.update(bearer("trader"))
        # Filled or rejected (risk may not have synced yet): either way the id is taken.
        first = await client.post("/v1/orders", json=ORDER)
        same = await client.post("/v1/orders", json={**ORDER, "quantity": "0.010"})
        assert (same.status_code, same.json()) == (first.status_code, first.json())

        other = {**ORDER, "side": "SIDE_SELL", "type": "ORDER_TYPE_LIMIT", "price": "90000"}
        response = await client.post("/v1/orders", json=other)

        assert response.status_code == 409, response.text
        status = response.json()
        assert status["code"] == 6  # ALREADY_EXISTS
        info = next(d for d in status["details"] if d["@type"].endswith("ErrorInfo"))
        assert info["reason"] == "CLIENT_ORDER_ID_REUSED"
        assert info["metadata"]["fields"] == "side,type,price,time_in_force"
        assert "side BUY -> SELL" in status["message"]
        listed = await _orders(client)
        assert [o["clientOrderId"] for o in listed] == ["gw-reused"]
        assert listed[0]["side"] == "SIDE_BUY"


async def _orders(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/orders", params={"venue": "paper"})
    assert response.status_code == 200, response.text
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders
