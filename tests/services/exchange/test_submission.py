"""Invalid SubmitOrder input: INVALID_ARGUMENT naming every bad field, nothing stored."""

from __future__ import annotations

import grpc
import pytest

from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import (
    LIMIT,
    MARKET,
    Exchange,
    ScriptedRisk,
    field_violations,
    order,
)


async def _rejected(exchange: Exchange, **fields: object) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(order(**fields))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(raised.value)


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"quantity": "-0.01"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "1,5"}, "quantity"),
        ({"quantity": "0.000001"}, "quantity"),  # BTC/USDT steps by 0.00001
        ({"symbol": "DOGE/USDT"}, "symbol"),
        ({"venue": "nowhere"}, "venue"),
        ({"type": LIMIT}, "price"),  # a limit order needs a price
        ({"type": LIMIT, "price": "60000.001"}, "price"),  # tick is 0.01
        ({"type": MARKET, "price": "60000"}, "price"),
        ({"client_order_id": "not allowed/slash"}, "client_order_id"),
    ],
)
async def test_each_bad_field_is_named(
    exchange: Exchange, risk: ScriptedRisk, fields: dict[str, object], bad_field: str
) -> None:
    violations = await _rejected(exchange, **fields)

    assert bad_field in violations
    assert risk.checks == []  # bad input never reaches risk...
    listed = await exchange.stub.ListOrders(exchange_pb2.ListOrdersRequest())
    assert list(listed.orders) == []  # ...nor the database


async def test_every_bad_field_is_reported_at_once(exchange: Exchange) -> None:
    violations = await _rejected(
        exchange, side=0, quantity="NaN", type=LIMIT, price="-1", client_order_id="x" * 40
    )

    assert set(violations) == {"side", "quantity", "price", "client_order_id"}
