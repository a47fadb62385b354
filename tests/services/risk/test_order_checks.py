"""CheckOrder over gRPC against scripted peers, as the exchange uses it: idempotent per
order id (the exchange retries an UNAVAILABLE check), an order never counted against
itself, and the trading state's time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read better short
from pathlib import Path
from typing import Any

import grpc
import pytest

from edgequant.common.v1 import common_pb2
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from tests.services.risk.test_servicer import (
    ETH,
    buy,
    eventually,
    next_event,
    position,
    reasons,
    risk_stack,
    synced,
)


def order_update(
    request: risk_pb2.CheckOrderRequest, status: common_pb2.OrderStatus.ValueType, filled: str
) -> common_pb2.Order:
    """The exchange's report of the order `request` checked."""
    return common_pb2.Order(
        order_id=request.order_id,
        venue="paper",
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        quantity=request.quantity,
        price=request.price,
        status=status,
        filled_quantity=filled,
    )


def sell(quantity: str, price: str = "0.1") -> risk_pb2.CheckOrderRequest:
    request = buy(quantity=quantity, price=price)
    request.side = common_pb2.SIDE_SELL
    return request


async def subscribed_events(risk: risk_pb2_grpc.RiskServiceAsyncStub) -> Any:
    """StreamRiskEvents, surely subscribed: risk sends the headers once it is."""
    events = risk.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
    await events.initial_metadata()
    return events


async def denials(events: Any, count: int) -> list[str]:
    """The order ids of the next `count` ORDER_DENIED events (state changes skipped)."""
    order_ids: list[str] = []
    while len(order_ids) < count:
        event = await next_event(events)
        if event.type == risk_pb2.RISK_EVENT_TYPE_ORDER_DENIED:
            order_ids.append(event.order_id)
    return order_ids


async def eth_open_notional(risk: risk_pb2_grpc.RiskServiceAsyncStub) -> D:
    exposure = (await risk.GetExposure(risk_pb2.GetExposureRequest())).exposure
    return sum((D(s.open_order_notional) for s in exposure.symbols if s.symbol == ETH), D(0))


async def eth_position(risk: risk_pb2_grpc.RiskServiceAsyncStub) -> D:
    exposure = (await risk.GetExposure(risk_pb2.GetExposureRequest())).exposure
    return sum((D(s.quantity) for s in exposure.symbols if s.symbol == ETH), D(0))


async def test_a_sell_right_after_a_buy_is_approved(tmp_path: Path) -> None:
    """The exchange reports an order (PENDING_NEW) before it asks for its check, and that
    report may arrive first: it is the order under check, not one more open sell order
    (which made a sell of the whole holding need twice the holding)."""
    async with risk_stack(tmp_path) as stack:
        risk, exchange, portfolio = stack.risk, stack.exchange, stack.portfolio
        await synced(risk)
        resting = await eth_open_notional(risk)  # the scripted exchange's open buy

        bought = buy(quantity="1", price="0.1")
        bought.order_id = "b-1"
        assert reasons(await risk.CheckOrder(bought)) == []
        assert await eth_open_notional(risk) == resting + D("0.1")  # reserved
        await exchange.order_updates.put(order_update(bought, common_pb2.ORDER_STATUS_FILLED, "1"))
        await portfolio.updates.put(position(ETH, "11", "1.0", seconds=2))

        async def bought_and_released() -> bool:
            notional = await eth_open_notional(risk)
            return await eth_position(risk) == 11 and notional == resting

        await eventually(bought_and_released)  # the fill released the reservation at once

        sold = sell(quantity="11")
        sold.order_id = "s-1"
        await exchange.order_updates.put(
            order_update(sold, common_pb2.ORDER_STATUS_PENDING_NEW, "0")
        )

        async def sell_reported() -> bool:
            return await eth_open_notional(risk) == resting + D("1.1")

        await eventually(sell_reported)
        approved = await risk.CheckOrder(sold)
        assert (reasons(approved), approved.decision) == ([], risk_pb2.DECISION_APPROVE)
        # One more sell is still more than the holding: the balance rule still holds.
        more = sell(quantity="1")
        more.order_id = "s-2"
        assert reasons(await risk.CheckOrder(more)) == ["RISK_INSUFFICIENT_BALANCE"]


async def test_a_repeated_check_answers_as_the_first_and_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    async with risk_stack(tmp_path, RISK__LIMITS__MAX_ORDERS_PER_MINUTE="3") as stack:
        risk = stack.risk
        # Stale checks while the feeds sync count in no window; the check that finds the
        # book synced is approved: one submission this minute.
        await synced(risk)
        events = await subscribed_events(risk)
        resting = await eth_open_notional(risk)

        first = buy(quantity="1", price="0.1")
        first.order_id = "r-1"
        approved = await risk.CheckOrder(first)
        assert await risk.CheckOrder(first) == approved  # the same answer, ...
        assert await eth_open_notional(risk) == resting + D("0.1")  # ... reserved once
        # The order fills and its reservation goes; a late repeat does not bring it back.
        await stack.exchange.order_updates.put(
            order_update(first, common_pb2.ORDER_STATUS_FILLED, "1")
        )

        async def released() -> bool:
            return await eth_open_notional(risk) == resting

        await eventually(released)
        assert await risk.CheckOrder(first) == approved
        assert await eth_open_notional(risk) == resting

        # Three checks of r-1 counted as one submission: r-2 is the last of three a minute.
        second = buy(quantity="1", price="0.1")
        second.order_id = "r-2"
        assert reasons(await risk.CheckOrder(second)) == []
        third = buy(quantity="1", price="0.1")
        third.order_id = "r-3"
        denied = await risk.CheckOrder(third)
        assert reasons(denied) == ["RISK_ORDER_RATE"]

        # A repeated denial is the same denial, published once.
        assert await risk.CheckOrder(third) == denied
        fourth = buy(quantity="1", price="0.1")
        fourth.order_id = "r-4"
        await risk.CheckOrder(fourth)
        assert await denials(events, 2) == ["r-3", "r-4"]
        events.cancel()

        # The same id with another order is refused, not answered with the first answer.
        other = buy(quantity="2", price="0.1")
        other.order_id = "r-1"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.CheckOrder(other)
        assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_the_initial_trading_state_dates_from_the_first_start(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    async with risk_stack(tmp_path) as stack:
        risk = stack.risk
        initial = (await risk.GetTradingState(risk_pb2.GetTradingStateRequest())).trading_state
        after = datetime.now(UTC)
        assert initial.state == risk_pb2.TRADING_STATE_ACTIVE
        assert before <= initial.update_time.ToDatetime(UTC) <= after
        # A restart keeps it: it is when trading began, not when the process did.
        risk = await stack.restart()
        again = (await risk.GetTradingState(risk_pb2.GetTradingStateRequest())).trading_state
        assert again == initial
        # A change moves it; the next restart serves the change.
        changed = await risk.SetTradingState(
            risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_HALTED, reason="test")
        )
        risk = await stack.restart()
        served = (await risk.GetTradingState(risk_pb2.GetTradingStateRequest())).trading_state
        assert served == changed.trading_state
        assert served.update_time.ToDatetime(UTC) >= initial.update_time.ToDatetime(UTC)
