"""SubmitOrder end to end on the paper venue: risk hop (fail closed), idempotency, cancel,
HALTED cancels open orders."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import grpc
import pytest

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from edgequant.risk.v1 import risk_pb2
from tests.services.exchange.exchange_testing import (
    BUY,
    LIMIT,
    SELL,
    Exchange,
    ScriptedRisk,
    StartExchange,
    error_info,
    order,
)

FILLED = common_pb2.ORDER_STATUS_FILLED
OPEN = common_pb2.ORDER_STATUS_OPEN
REJECTED = common_pb2.ORDER_STATUS_REJECTED
CANCELED = common_pb2.ORDER_STATUS_CANCELED


async def _stored(exchange: Exchange, client_order_id: str) -> common_pb2.Order:
    response = await exchange.stub.GetOrder(
        exchange_pb2.GetOrderRequest(venue="paper", client_order_id=client_order_id)
    )
    return response.order


async def test_an_approved_market_order_fills_against_the_book(
    exchange: Exchange, risk: ScriptedRisk
) -> None:
    ask = exchange.paper.book.best_ask()
    assert ask is not None

    response = await exchange.stub.SubmitOrder(order(client_order_id="m1"))

    assert response.order.status == FILLED
    assert response.order.filled_quantity == "0.01"
    assert risk.checks[0].client_order_id == "m1"
    assert risk.checks[0].quantity == "0.01"
    assert (await _stored(exchange, "m1")).status == FILLED


async def test_resubmitting_a_client_order_id_returns_the_original_order(
    exchange: Exchange, risk: ScriptedRisk
) -> None:
    first = await exchange.stub.SubmitOrder(order(client_order_id="same"))
    # The same order spelled otherwise: "0.010" is 0.01, IOC is a market order's default.
    again = await exchange.stub.SubmitOrder(
        order(
            client_order_id="same",
            quantity="0.010",
            time_in_force=common_pb2.TIME_IN_FORCE_IOC,
        )
    )

    assert again.order == first.order
    assert len(risk.checks) == 1
    stream = exchange.stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest(after_seq=0))
    executions: list[common_pb2.Execution] = []
    while sum(Decimal(e.quantity) for e in executions) < Decimal("0.01"):
        message = await stream.read()
        assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
        executions.append(message.execution)
    stream.cancel()
    assert {e.client_order_id for e in executions} == {"same"}
    assert exchange.servicer.outbox.last_sequence == len(executions)
    listed = await exchange.stub.ListOrders(exchange_pb2.ListOrdersRequest())
    assert [o.client_order_id for o in listed.orders] == ["same"]


async def test_a_client_order_id_reused_for_another_order_is_already_exists(
    exchange: Exchange, risk: ScriptedRisk
) -> None:
    first = await exchange.stub.SubmitOrder(order(client_order_id="reused"))
    balances = await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(
            order(client_order_id="reused", side=SELL, type=LIMIT, price="90000")
        )

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info = error_info(raised.value)
    assert info.reason == "CLIENT_ORDER_ID_REUSED"
    assert info.metadata["fields"] == "side,type,price,time_in_force"
    assert info.metadata["order_id"] == first.order.order_id
    details = raised.value.details() or ""
    assert "side BUY -> SELL" in details
    assert "type MARKET -> LIMIT" in details
    # Nothing reached risk or the venue, and the original order is untouched.
    assert len(risk.checks) == 1
    assert await _stored(exchange, "reused") == first.order
    after = await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
    assert after == balances

    # One differing field is named alone.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(order(client_order_id="reused", quantity="0.02"))
    assert error_info(raised.value).metadata["fields"] == "quantity"
    assert "quantity 0.01 -> 0.02" in (raised.value.details() or "")


async def test_a_rejected_order_id_reused_with_other_parameters_is_already_exists(
    exchange: Exchange, risk: ScriptedRisk
) -> None:
    risk.mode = "deny"
    risk.violations = [risk_pb2.Violation(reason="RISK_MAX_NOTIONAL", message="too big")]
    with pytest.raises(grpc.aio.AioRpcError):
        await exchange.stub.SubmitOrder(order(client_order_id="denied-then-other"))
    risk.mode = "approve"

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(
            order(client_order_id="denied-then-other", reduce_only=True)
        )

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(raised.value).metadata["fields"] == "reduce_only"
    assert len(risk.checks) == 1


async def test_a_risk_denial_rejects_the_order_with_its_reasons(
    exchange: Exchange, risk: ScriptedRisk
) -> None:
    risk.mode = "deny"
    risk.violations = [
        risk_pb2.Violation(
            reason="RISK_MAX_NOTIONAL",
            message="order value reaches the maximum",
            limit="500",
            actual="600",
        ),
        risk_pb2.Violation(reason="RISK_MAX_OPEN_ORDERS", message="too many open orders"),
    ]

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(order(client_order_id="denied"))

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(raised.value)
    assert info.reason == "RISK_MAX_NOTIONAL"
    assert info.metadata["reasons"] == "RISK_MAX_NOTIONAL,RISK_MAX_OPEN_ORDERS"
    stored = await _stored(exchange, "denied")
    assert stored.status == REJECTED
    assert list(stored.reject_reasons) == ["RISK_MAX_NOTIONAL", "RISK_MAX_OPEN_ORDERS"]
    # With its figures, so the trader knows by how much to change the order.
    described = "order value reaches the maximum (600 against 500)"
    assert described in stored.reject_message
    assert described in (raised.value.details() or "")
    assert "too many open orders" in stored.reject_message
    balances_before = await exchange.stub.GetBalances(
        exchange_pb2.GetBalancesRequest(venue="paper")
    )

    # The same id again: the same answer, without asking risk or the venue again.
    risk.mode = "approve"
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await exchange.stub.SubmitOrder(order(client_order_id="denied"))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(again.value).reason == "RISK_MAX_NOTIONAL"
    assert len(risk.checks) == 1
    balances_after = await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
    assert balances_after == balances_before


async def test_risk_not_answering_in_time_rejects_the_order(
    start_exchange: StartExchange, risk: ScriptedRisk
) -> None:
    risk.mode = "hang"
    async with start_exchange(EXCHANGE__RISK__CHECK_TIMEOUT_SECONDS="0.1") as exchange:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await exchange.stub.SubmitOrder(order(client_order_id="slow"))

        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(raised.value).reason == "RISK_UNAVAILABLE"
        stored = await _stored(exchange, "slow")
        assert stored.status == REJECTED
        assert list(stored.reject_reasons) == ["RISK_UNAVAILABLE"]
        assert exchange.servicer.outbox.last_sequence == 0


async def test_a_transient_unavailable_from_risk_is_retried_within_the_deadline(
    exchange: Exchange, risk: ScriptedRisk
) -> None:
    """The connection to risk closed under the check (GOAWAY): the same check again, not
    a rejection that uses up the client_order_id. Risk answers a repeat as the first."""
    risk.failures = 1
    response = await exchange.stub.SubmitOrder(order(client_order_id="retried"))

    assert response.order.status == FILLED
    assert [check.order_id for check in risk.checks] == [response.order.order_id] * 2


async def test_other_risk_errors_are_not_retried(exchange: Exchange, risk: ScriptedRisk) -> None:
    risk.failures, risk.failure_code = 1, grpc.StatusCode.INTERNAL
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(order(client_order_id="broken"))

    assert error_info(raised.value).reason == "RISK_UNAVAILABLE"
    assert len(risk.checks) == 1
    assert (await _stored(exchange, "broken")).status == REJECTED


async def test_risk_down_rejects_the_order(
    start_exchange: StartExchange, dead_address: str
) -> None:
    async with start_exchange(RISK__ADDRESS=dead_address) as exchange:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await exchange.stub.SubmitOrder(order(client_order_id="nobody"))

        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(raised.value).reason == "RISK_UNAVAILABLE"
        assert (await _stored(exchange, "nobody")).status == REJECTED


async def test_insufficient_funds_is_failed_precondition_and_stored(exchange: Exchange) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(order(client_order_id="big", side=SELL, quantity="5"))

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(raised.value)
    assert info.reason == "INSUFFICIENT_FUNDS"
    assert info.metadata["asset"] == "BTC"
    assert (await _stored(exchange, "big")).status == REJECTED


async def _resting_buy(exchange: Exchange, client_order_id: str) -> common_pb2.Order:
    bid = exchange.paper.book.best_bid()
    assert bid is not None
    price = f"{bid[0] - 100:f}"
    response = await exchange.stub.SubmitOrder(
        order(client_order_id=client_order_id, side=BUY, type=LIMIT, price=price)
    )
    assert response.order.status == OPEN
    return response.order


async def test_cancel_frees_the_locked_funds(exchange: Exchange) -> None:
    resting = await _resting_buy(exchange, "rest")
    locked = await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
    usdt = next(b for b in locked.balances if b.asset == "USDT")
    assert usdt.locked != "0"

    canceled = await exchange.stub.CancelOrder(
        exchange_pb2.CancelOrderRequest(order_id=resting.order_id)
    )

    assert canceled.order.status == CANCELED
    after = await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="paper"))
    assert next(b for b in after.balances if b.asset == "USDT").locked == "0"
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await exchange.stub.CancelOrder(exchange_pb2.CancelOrderRequest(order_id=resting.order_id))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_halted_trading_cancels_open_orders(exchange: Exchange, risk: ScriptedRisk) -> None:
    first = await _resting_buy(exchange, "h1")
    second = await _resting_buy(exchange, "h2")
    for _ in range(200):
        if risk.subscribers:
            break
        await asyncio.sleep(0.01)

    risk.halt("daily loss limit")

    for _ in range(200):
        statuses = [(await _stored(exchange, o.client_order_id)).status for o in (first, second)]
        if statuses == [CANCELED, CANCELED]:
            break
        await asyncio.sleep(0.01)
    assert statuses == [CANCELED, CANCELED]


async def test_list_orders_pages_newest_first(exchange: Exchange) -> None:
    for number in range(5):
        await _resting_buy(exchange, f"p{number}")

    seen: list[str] = []
    token = ""
    while True:
        page = await exchange.stub.ListOrders(
            exchange_pb2.ListOrdersRequest(page_size=2, page_token=token)
        )
        seen += [o.client_order_id for o in page.orders]
        token = page.next_page_token
        if not token:
            break

    assert seen == ["p4", "p3", "p2", "p1", "p0"]
