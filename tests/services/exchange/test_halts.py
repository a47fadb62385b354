"""HALTED from risk: on one venue account it cancels that venue's open orders only; the
global kill switch cancels every venue's. The paper venue beside a ccxt venue (real
ccxt against the fake Binance on 127.0.0.1), risk scripted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import (
    BUY,
    LIMIT,
    Exchange,
    ScriptedRisk,
    StartExchange,
    order,
)
from tests.services.exchange.fake_binance import FakeBinance, serving_fake_binance

OPEN = common_pb2.ORDER_STATUS_OPEN
CANCELED = common_pb2.ORDER_STATUS_CANCELED


@pytest.fixture
async def exchange(
    start_exchange: StartExchange, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Exchange, FakeBinance]]:
    monkeypatch.setenv("EQ_TEST_BINANCE_KEY", "key")
    monkeypatch.setenv("EQ_TEST_BINANCE_SECRET", "secret")
    venue = "EXCHANGE__VENUES__BINANCE__"
    async with (
        serving_fake_binance() as fake,
        start_exchange(
            **{
                f"{venue}EXCHANGE_ID": "binance",
                f"{venue}SANDBOX": "false",
                f"{venue}API_URL": fake.url,
                f"{venue}API_KEY_ENV": "EQ_TEST_BINANCE_KEY",
                f"{venue}SECRET_ENV": "EQ_TEST_BINANCE_SECRET",
                f"{venue}TIMEOUT_MS": "1000",
                f"{venue}ORDER_POLL_SECONDS": "3600",
            }
        ) as running,
    ):
        yield running, fake


async def _resting(exchange: Exchange, venue: str, client_order_id: str) -> str:
    if venue == "paper":
        bid = exchange.paper.book.best_bid()
        assert bid is not None
        request = order(client_order_id=client_order_id, side=BUY, type=LIMIT)
        request.price = f"{bid[0] - 100:f}"
    else:
        request = order(
            venue=venue,
            client_order_id=client_order_id,
            side=BUY,
            type=LIMIT,
            quantity="0.001",
            price="30000.5",
        )
    response = await exchange.stub.SubmitOrder(request)
    assert response.order.status == OPEN
    return response.order.order_id


async def _status(exchange: Exchange, order_id: str) -> int:
    response = await exchange.stub.GetOrder(exchange_pb2.GetOrderRequest(order_id=order_id))
    return response.order.status


async def _until_canceled(exchange: Exchange, order_id: str) -> None:
    for _ in range(500):
        if await _status(exchange, order_id) == CANCELED:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{order_id} was not canceled")


async def _subscribed(risk: ScriptedRisk) -> None:
    for _ in range(500):
        if risk.subscribers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the exchange never followed the risk events")


async def test_halting_one_account_cancels_only_its_venues_orders(
    exchange: tuple[Exchange, FakeBinance], risk: ScriptedRisk
) -> None:
    running, fake = exchange
    on_paper = await _resting(running, "paper", "p-1")
    on_binance = await _resting(running, "binance", "b-1")
    await _subscribed(risk)

    risk.halt("binance incident", account_id="binance")

    await _until_canceled(running, on_binance)
    assert fake.orders["b-1"]["status"] == "CANCELED"
    # Venues are canceled in turn, paper first: had the halt reached it, it would be gone.
    assert await _status(running, on_paper) == OPEN

    risk.halt("everything")  # the global kill switch
    await _until_canceled(running, on_paper)


async def test_an_account_found_halted_on_connecting_is_canceled(
    start_exchange: StartExchange, risk: ScriptedRisk
) -> None:
    async with start_exchange() as running:
        on_paper = await _resting(running, "paper", "p-2")
    risk.halted_accounts.append("paper")
    async with start_exchange() as running:
        await _until_canceled(running, on_paper)


async def test_a_halt_lost_with_a_cut_stream_is_read_on_reconnecting(
    exchange: tuple[Exchange, FakeBinance], risk: ScriptedRisk
) -> None:
    running, _fake = exchange
    on_paper = await _resting(running, "paper", "p-3")
    await _subscribed(risk)

    risk.halt_unheard()  # no HALTED event: the stream ends with ABORTED

    await _until_canceled(running, on_paper)
    assert risk.subscribers == 2  # it was GetTradingState on the new connection that told
