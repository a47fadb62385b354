"""A ccxt venue through the service: real ccxt against a fake Binance on 127.0.0.1 that
answers with Binance's recorded bodies, and fails on demand (429, 5xx, garbage, timeout)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from common.config import ConfigError
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from services.exchange.ccxt_venue import load_keys
from services.exchange.settings import CcxtVenueSettings
from tests.services.exchange.exchange_testing import (
    LIMIT,
    Exchange,
    StartExchange,
    error_info,
    order,
)
from tests.services.exchange.fake_binance import FakeBinance, serving_fake_binance

SECRET = "s3cr3t-never-shown"  # noqa: S105 - a test value, to look for in the output
ORDER = "POST /api/v3/order"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with serving_fake_binance() as venue:
        yield venue


@pytest.fixture
async def exchange(
    start_exchange: StartExchange, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Exchange]:
    monkeypatch.setenv("EQ_TEST_BINANCE_KEY", "key-never-shown")
    monkeypatch.setenv("EQ_TEST_BINANCE_SECRET", SECRET)
    venue = "EXCHANGE__VENUES__BINANCE__"
    async with start_exchange(
        **{
            f"{venue}EXCHANGE_ID": "binance",
            f"{venue}SANDBOX": "false",
            f"{venue}API_URL": fake.url,
            f"{venue}API_KEY_ENV": "EQ_TEST_BINANCE_KEY",
            f"{venue}SECRET_ENV": "EQ_TEST_BINANCE_SECRET",
            f"{venue}TIMEOUT_MS": "1000",
            f"{venue}READ_RETRIES": "1",
            f"{venue}RETRY_BACKOFF_SECONDS": "0.01",
            f"{venue}ORDER_POLL_SECONDS": "3600",  # these tests count the venue's calls
        }
    ) as running:
        yield running


def _binance(**fields: object) -> exchange_pb2.SubmitOrderRequest:
    return order(venue="binance", quantity="0.001", **fields)


async def test_market_data_comes_through_with_binances_values(
    exchange: Exchange, fake: FakeBinance
) -> None:
    stub = exchange.stub
    markets = await stub.ListMarkets(exchange_pb2.ListMarketsRequest(venue="binance"))
    ticker = await stub.GetTicker(exchange_pb2.GetTickerRequest(venue="binance", symbol="BTC/USDT"))
    book = await stub.GetOrderBook(
        exchange_pb2.GetOrderBookRequest(venue="binance", symbol="BTC/USDT", depth=5)
    )
    balances = await stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="binance"))

    (market,) = markets.markets
    assert (market.price_increment, market.quantity_increment, market.min_notional) == (
        "0.01",
        "0.00001",
        "5",
    )
    assert (ticker.ticker.bid, ticker.ticker.ask, ticker.ticker.last) == (
        "73369.83",
        "73369.84",
        "73369.84",
    )
    assert [(lv.price, lv.quantity) for lv in book.order_book.bids] == [
        ("42574.3", "0.0107"),
        ("42574.2", "0.00646"),
    ]
    assert {(b.asset, b.free) for b in balances.balances} == {
        ("LTC", "0.919741"),
        ("ETH", "0.02229833"),
    }


async def test_candles_are_fetched_once_then_served_from_the_database(
    exchange: Exchange, fake: FakeBinance
) -> None:
    start = Timestamp()
    start.FromMilliseconds(1706628191000)
    request = exchange_pb2.GetCandlesRequest(
        venue="binance",
        symbol="BTC/USDT",
        timeframe=common_pb2.TIMEFRAME_1H,
        start_time=start,
        limit=3,
    )

    first = await exchange.stub.GetCandles(request)
    again = await exchange.stub.GetCandles(request)

    assert [(c.open_time.ToMilliseconds(), c.open, c.close) for c in first.candles] == [
        (1706630400000, "43519.34", "43488.71"),
        (1706634000000, "43488.71", "43374.8"),
        (1706637600000, "43374.81", "43361.11"),
    ]
    assert again == first
    assert fake.calls["GET /api/v3/klines"] == 1


async def test_create_and_cancel_an_order(exchange: Exchange, fake: FakeBinance) -> None:
    placed = await exchange.stub.SubmitOrder(
        _binance(client_order_id="lim-1", type=LIMIT, price="60000.5")
    )
    assert placed.order.status == common_pb2.ORDER_STATUS_OPEN
    assert placed.order.venue_order_id == fake.orders["lim-1"]["orderId"]
    assert fake.orders["lim-1"]["price"] == "60000.5"

    canceled = await exchange.stub.CancelOrder(
        exchange_pb2.CancelOrderRequest(order_id=placed.order.order_id)
    )

    assert canceled.order.status == common_pb2.ORDER_STATUS_CANCELED
    assert fake.orders["lim-1"]["status"] == "CANCELED"


async def test_a_filled_market_order_lands_in_the_outbox(
    exchange: Exchange, fake: FakeBinance
) -> None:
    placed = await exchange.stub.SubmitOrder(_binance(client_order_id="mkt-1"))

    assert placed.order.status == common_pb2.ORDER_STATUS_FILLED
    assert placed.order.average_fill_price == "73369.84"
    stream = exchange.stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest())
    message = await stream.read()
    stream.cancel()
    assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
    execution = message.execution
    assert (execution.venue, execution.trade_id, execution.quantity) == (
        "binance",
        "1001" + "0",
        "0.001",
    )
    assert (execution.fee, execution.fee_currency) == ("0.07336984", "USDT")


# What each failure of the venue becomes; one exchange serves all the cases (start-up is
# the slow part of these tests).
CREATE_FAULTS = [
    ("429", grpc.StatusCode.RESOURCE_EXHAUSTED, "VENUE_DDOS_PROTECTION"),
    ("500", grpc.StatusCode.UNAVAILABLE, "VENUE_UNAVAILABLE"),
    ("503", grpc.StatusCode.UNAVAILABLE, "VENUE_UNAVAILABLE"),
    ("garbage", grpc.StatusCode.UNAVAILABLE, "VENUE_BAD_RESPONSE"),
    ("timeout", grpc.StatusCode.UNAVAILABLE, "VENUE_TIMEOUT"),
]


async def test_a_failed_create_is_mapped_and_never_duplicated(
    exchange: Exchange, fake: FakeBinance
) -> None:
    for number, (fault, code, reason) in enumerate(CREATE_FAULTS):
        fake.fail(ORDER, fault)
        client_order_id = f"f-{fault}"

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await exchange.stub.SubmitOrder(_binance(client_order_id=client_order_id))
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await exchange.stub.SubmitOrder(_binance(client_order_id=client_order_id))

        assert (fault, raised.value.code(), again.value.code()) == (fault, code, code)
        assert (fault, error_info(raised.value).reason) == (fault, reason)
        assert fake.calls[ORDER] == number + 1  # each create sent once, never retried
        assert fake.orders == {}


async def test_a_create_whose_answer_is_lost_is_found_not_repeated(
    exchange: Exchange, fake: FakeBinance
) -> None:
    fake.fail(ORDER, "timeout-after")  # Binance places the order, the answer times out

    placed = await exchange.stub.SubmitOrder(_binance(client_order_id="lost-1"))
    again = await exchange.stub.SubmitOrder(_binance(client_order_id="lost-1"))

    assert placed.order.status == common_pb2.ORDER_STATUS_FILLED
    assert again.order == placed.order
    assert list(fake.orders) == ["lost-1"]
    assert fake.calls[ORDER] == 1
    assert fake.calls["GET /api/v3/order"] == 1


async def test_failing_reads_are_retried_then_mapped(exchange: Exchange, fake: FakeBinance) -> None:
    route = "GET /api/v3/ticker/24hr"
    request = exchange_pb2.GetTickerRequest(venue="binance", symbol="BTC/USDT")
    for fault, code, _reason in CREATE_FAULTS:
        before = fake.calls[route]
        fake.fail(route, fault, fault)  # one try and one retry

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await exchange.stub.GetTicker(request)

        assert (fault, raised.value.code()) == (fault, code)
        assert fake.calls[route] == before + 2
        fake.fail(route, fault)  # one failure only: the retry answers
        assert (await exchange.stub.GetTicker(request)).ticker.last == "73369.84"


async def test_keys_are_never_logged_nor_returned(
    exchange: Exchange, fake: FakeBinance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail(ORDER, "500")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(_binance(client_order_id="k-1"))
    venues = await exchange.stub.ListVenues(exchange_pb2.ListVenuesRequest())

    shown = caplog.text + str(raised.value.details()) + str(venues) + str(error_info(raised.value))
    assert SECRET not in shown
    assert "key-never-shown" not in shown


def test_a_secrets_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secrets = tmp_path / "binance.toml"
    secrets.write_text(f'api_key = "k"\nsecret = "{SECRET}"\n')
    secrets.chmod(0o644)
    settings = CcxtVenueSettings(exchange_id="binance", secrets_file=str(secrets))

    with pytest.raises(ConfigError) as raised:
        load_keys("binance", settings)
    assert "chmod 600" in str(raised.value)
    assert SECRET not in str(raised.value)

    os.chmod(secrets, 0o600)
    assert load_keys("binance", settings) == {"apiKey": "k", "secret": SECRET}


async def test_stream_tickers_polls_the_venue(
    start_exchange: StartExchange, fake: FakeBinance
) -> None:
    venue = "EXCHANGE__VENUES__BINANCE__"
    settings = {
        f"{venue}EXCHANGE_ID": "binance",
        f"{venue}SANDBOX": "false",
        f"{venue}API_URL": fake.url,
        f"{venue}TICKER_POLL_SECONDS": "0.05",
    }
    async with start_exchange(**settings) as exchange:
        stream = exchange.stub.StreamTickers(
            exchange_pb2.StreamTickersRequest(venue="binance", symbols=["BTC/USDT"])
        )
        received = [await stream.read() for _ in range(2)]
        stream.cancel()

    assert [
        r.ticker.last for r in received if isinstance(r, exchange_pb2.StreamTickersResponse)
    ] == [
        "73369.84",
        "73369.84",
    ]
    assert fake.calls["GET /api/v3/ticker/24hr"] >= 2


async def test_an_unknown_outcome_leaves_the_order_pending(
    exchange: Exchange, fake: FakeBinance
) -> None:
    fake.fail(ORDER, "timeout")  # no answer to the create...
    fake.fail("GET /api/v3/order", "timeout", "timeout")  # ...nor to the lookup and its retry

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(_binance(client_order_id="unknown-1"))
    again = await exchange.stub.SubmitOrder(_binance(client_order_id="unknown-1"))

    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_info(raised.value).reason == "VENUE_OUTCOME_UNKNOWN"
    assert again.order.status == common_pb2.ORDER_STATUS_PENDING_NEW
    assert fake.calls[ORDER] == 1


async def test_fills_of_a_resting_order_are_picked_up_by_polling(
    start_exchange: StartExchange, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EQ_TEST_BINANCE_KEY", "key")
    monkeypatch.setenv("EQ_TEST_BINANCE_SECRET", SECRET)
    venue = "EXCHANGE__VENUES__BINANCE__"
    settings = {
        f"{venue}EXCHANGE_ID": "binance",
        f"{venue}SANDBOX": "false",
        f"{venue}API_URL": fake.url,
        f"{venue}API_KEY_ENV": "EQ_TEST_BINANCE_KEY",
        f"{venue}SECRET_ENV": "EQ_TEST_BINANCE_SECRET",
        f"{venue}ORDER_POLL_SECONDS": "0.05",
    }
    async with start_exchange(**settings) as exchange:
        placed = await exchange.stub.SubmitOrder(
            _binance(client_order_id="rest-1", type=LIMIT, price="60000")
        )
        assert placed.order.status == common_pb2.ORDER_STATUS_OPEN
        # Binance fills it later, at the limit.
        fake.orders["rest-1"].update(status="FILLED", executedQty="0.001", cummulativeQuoteQty="60")

        stream = exchange.stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest())
        message = await stream.read()
        stream.cancel()
        stored = await exchange.stub.GetOrder(
            exchange_pb2.GetOrderRequest(order_id=placed.order.order_id)
        )

    assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
    assert (message.execution.client_order_id, message.execution.quantity) == ("rest-1", "0.001")
    assert message.execution.price == "60000"
    assert stored.order.status == common_pb2.ORDER_STATUS_FILLED
