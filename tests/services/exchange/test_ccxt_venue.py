"""ccxt venues through the service: real ccxt against fake venues on 127.0.0.1 that answer
with each exchange's recorded bodies and fail on demand. Every fake passes the same
contract: Binance (statuses and fills in the create answer, 4xx envelopes), OKX
(passphrase, ids-only create answers, fills apart, 200 envelopes with codes, 300/100-candle
pages, clOrdId of letters and digits only) and Kraken (`{"error": [...]}` envelopes,
txid-only create answers, no lookup by our client order id, trade amounts apart)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from common.config import ConfigError
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from services.exchange import servicer
from services.exchange.ccxt_venue import CcxtVenue
from services.exchange.settings import CcxtVenueSettings
from tests.services.exchange.exchange_testing import (
    LIMIT,
    Exchange,
    StartExchange,
    error_info,
    field_violations,
    order,
)
from tests.services.exchange.fake_binance import serving_fake_binance
from tests.services.exchange.fake_kraken import serving_fake_kraken
from tests.services.exchange.fake_okx import PASSPHRASE, serving_fake_okx
from tests.services.exchange.fake_venue import FakeVenue

SECRET = "s3cr3t-never-shown"  # noqa: S105 - a test value, to look for in the output
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Case:
    """One fake venue and what its recorded bodies say."""

    exchange_id: str
    serving: Callable[[], AbstractAsyncContextManager[Any]]
    credentials: dict[str, str]  # setting -> value (put in the environment)
    create_route: str
    lookup_route: str
    ticker_route: str
    candles_route: str
    last: str
    bids: list[tuple[str, str]]
    balances: set[tuple[str, str]]
    candles: list[tuple[int, str, str]]
    market_fill: tuple[str, str, str]  # price, trade id, fee (USDT) of a 0.001 market buy
    book_route: str
    balance_route: str
    cancel_route: str
    refused_client_id: str  # a client order id the venue would refuse

    def __str__(self) -> str:
        return self.exchange_id


BINANCE = Case(
    exchange_id="binance",
    serving=serving_fake_binance,
    credentials={"API_KEY": "key-never-shown", "SECRET": SECRET},
    create_route="POST /api/v3/order",
    lookup_route="GET /api/v3/order",
    ticker_route="GET /api/v3/ticker/24hr",
    candles_route="GET /api/v3/klines",
    last="73369.84",
    bids=[("42574.3", "0.0107"), ("42574.2", "0.00646")],
    balances={("LTC", "0.919741"), ("ETH", "0.02229833")},
    candles=[
        (1706630400000, "43519.34", "43488.71"),
        (1706634000000, "43488.71", "43374.8"),
        (1706637600000, "43374.81", "43361.11"),
    ],
    market_fill=("73369.84", "10010", "0.07336984"),
    book_route="GET /api/v3/depth",
    balance_route="GET /api/v3/account",
    cancel_route="DELETE /api/v3/order",
    refused_client_id="x" * 37,
)
OKX = Case(
    exchange_id="okx",
    serving=serving_fake_okx,
    credentials={"API_KEY": "key-never-shown", "SECRET": SECRET, "PASSWORD": PASSPHRASE},
    create_route="POST /api/v5/trade/batch-orders",
    lookup_route="GET /api/v5/trade/order",
    ticker_route="GET /api/v5/market/ticker",
    candles_route="GET /api/v5/market/history-candles",
    last="73384.8",
    bids=[("67973.3", "0.05"), ("67973.2", "0.00725939")],
    balances={("BTC", "0.6612664522199999"), ("LTC", "10.19979")},
    candles=[
        (1706630400000, "43377.1", "43495.9"),
        (1706634000000, "43495.9", "43398.6"),
        (1706637600000, "43398.6", "43373.9"),
    ],
    market_fill=("73384.8", "58149846", "0.0733848"),
    book_route="GET /api/v5/market/books",
    balance_route="GET /api/v5/account/balance",
    cancel_route="POST /api/v5/trade/cancel-order",
    refused_client_id="my-order-1",  # OKX: letters and digits only
)
KRAKEN = Case(
    exchange_id="kraken",
    serving=serving_fake_kraken,
    credentials={
        "API_KEY": "key-never-shown",
        "SECRET": base64.b64encode(SECRET.encode()).decode(),
    },
    create_route="POST /0/private/AddOrder",
    lookup_route="POST /0/private/QueryOrders",
    ticker_route="GET /0/public/Ticker",
    candles_route="GET /0/public/OHLC",
    last="73380.6",
    bids=[("73380.6", "0.5"), ("73380", "2")],
    balances={("BTC", "0.9"), ("USDT", "1000")},
    candles=[
        (1706630400000, "43366.3", "43485"),
        (1706634000000, "43497.5", "43409.5"),
        (1706637600000, "43398.3", "43386.6"),
    ],
    market_fill=("73380.7", "T01001-FAKE0-KRAKEN", "0.19078982"),
    book_route="GET /0/public/Depth",
    balance_route="POST /0/private/BalanceEx",
    cancel_route="POST /0/private/CancelOrder",
    refused_client_id="x" * 19,  # Kraken: a UUID, or up to 18 characters
)
CASES = [BINANCE, OKX, KRAKEN]


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def fake(case: Case) -> AsyncIterator[Any]:
    async with case.serving() as venue:
        yield venue


def settings_of(
    case: Case, fake: FakeVenue, monkeypatch: pytest.MonkeyPatch, **overrides: str
) -> dict[str, str]:
    prefix = f"EXCHANGE__VENUES__{case.exchange_id.upper()}__"
    settings = {
        f"{prefix}EXCHANGE_ID": case.exchange_id,
        f"{prefix}SANDBOX": "false",
        f"{prefix}API_URL": fake.url,
        f"{prefix}TIMEOUT_MS": "1000",
        f"{prefix}READ_RETRIES": "1",
        f"{prefix}RETRY_BACKOFF_SECONDS": "0.01",
        f"{prefix}ORDER_POLL_SECONDS": "3600",  # these tests count the venue's calls
    }
    for credential, value in case.credentials.items():
        variable = f"EQ_TEST_{case.exchange_id.upper()}_{credential}"
        monkeypatch.setenv(variable, value)
        settings[f"{prefix}{credential}_ENV"] = variable
    settings.update({f"{prefix}{key.upper()}": value for key, value in overrides.items()})
    return settings


@pytest.fixture
async def exchange(
    start_exchange: StartExchange, case: Case, fake: FakeVenue, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Exchange]:
    async with start_exchange(**settings_of(case, fake, monkeypatch)) as running:
        yield running


def submit(case: Case, **fields: object) -> exchange_pb2.SubmitOrderRequest:
    return order(venue=case.exchange_id, quantity="0.001", **fields)


async def wait_for_status(exchange: Exchange, order_id: str, status: int) -> Any:
    """The order once it has `status`; the venue's later answer arrives by polling."""
    for _ in range(200):
        found = await exchange.stub.GetOrder(exchange_pb2.GetOrderRequest(order_id=order_id))
        if found.order.status == status:
            return found.order
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} never reached {status}: {found.order}")


# -- market data ---------------------------------------------------------------------------


async def test_market_data_comes_through_with_the_venues_values(
    case: Case, exchange: Exchange
) -> None:
    stub, venue = exchange.stub, case.exchange_id
    markets = await stub.ListMarkets(exchange_pb2.ListMarketsRequest(venue=venue))
    ticker = await stub.GetTicker(exchange_pb2.GetTickerRequest(venue=venue, symbol="BTC/USDT"))
    book = await stub.GetOrderBook(
        exchange_pb2.GetOrderBookRequest(venue=venue, symbol="BTC/USDT", depth=2)
    )
    balances = await stub.GetBalances(exchange_pb2.GetBalancesRequest(venue=venue))

    assert [m.symbol for m in markets.markets] == ["BTC/USDT"]
    assert ticker.ticker.last == case.last
    assert [(lv.price, lv.quantity) for lv in book.order_book.bids] == case.bids
    assert {(b.asset, b.free) for b in balances.balances} == case.balances


def _candles_request(case: Case, limit: int) -> exchange_pb2.GetCandlesRequest:
    start = Timestamp()
    start.FromMilliseconds(1706628191000)
    return exchange_pb2.GetCandlesRequest(
        venue=case.exchange_id,
        symbol="BTC/USDT",
        timeframe=common_pb2.TIMEFRAME_1H,
        start_time=start,
        limit=limit,
    )


async def test_candles_are_fetched_once_then_served_from_the_database(
    case: Case, exchange: Exchange, fake: FakeVenue
) -> None:
    first = await exchange.stub.GetCandles(_candles_request(case, 3))
    again = await exchange.stub.GetCandles(_candles_request(case, 3))

    assert [(c.open_time.ToMilliseconds(), c.open, c.close) for c in first.candles] == case.candles
    assert again == first
    assert fake.calls[case.candles_route] == 1


async def test_a_window_longer_than_a_venue_page_comes_whole(
    case: Case, exchange: Exchange, fake: Any
) -> None:
    # Binance pages 1000 candles, OKX's history 100 (and returns the newest of a window
    # asked bigger): shorter pages than asked must not leave holes.
    if case is BINANCE:
        fake.klines_page = 200
    if case is KRAKEN:  # 720 a request: shorter here, to page
        fake.ohlc_page = 200

    candles = (await exchange.stub.GetCandles(_candles_request(case, 700))).candles

    times = [c.open_time.ToMilliseconds() for c in candles]
    assert times == [1706630400000 + n * HOUR_MS for n in range(700)]
    assert fake.calls[case.candles_route] > 1


async def test_the_span_after_the_venues_last_candle_is_not_cached_as_empty(
    start_exchange: StartExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with BINANCE.serving() as fake:
        fake.klines_count = 10  # asked 20: the venue has 10 (it lags, or history ends)
        async with start_exchange(**settings_of(BINANCE, fake, monkeypatch)) as exchange:
            short = (await exchange.stub.GetCandles(_candles_request(BINANCE, 20))).candles
            calls = fake.calls[BINANCE.candles_route]
            # Inside what the venue returned: from the database.
            inside = (await exchange.stub.GetCandles(_candles_request(BINANCE, 5))).candles
            assert fake.calls[BINANCE.candles_route] == calls
            fake.klines_count = 2000  # the venue has the rest now
            whole = (await exchange.stub.GetCandles(_candles_request(BINANCE, 20))).candles

    first = 1706630400000
    assert [c.open_time.ToMilliseconds() for c in short] == [first + n * HOUR_MS for n in range(10)]
    assert list(inside) == list(short[:5])
    assert [c.open_time.ToMilliseconds() for c in whole] == [first + n * HOUR_MS for n in range(20)]


async def test_an_unparsable_body_is_an_error_and_nothing_is_cached(
    case: Case, exchange: Exchange, fake: FakeVenue
) -> None:
    stub, venue = exchange.stub, case.exchange_id
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        (case.candles_route, lambda: stub.GetCandles(_candles_request(case, 3))),
        (
            case.ticker_route,
            lambda: stub.GetTicker(exchange_pb2.GetTickerRequest(venue=venue, symbol="BTC/USDT")),
        ),
        (
            case.book_route,
            lambda: stub.GetOrderBook(
                exchange_pb2.GetOrderBookRequest(venue=venue, symbol="BTC/USDT", depth=2)
            ),
        ),
        (
            case.balance_route,
            lambda: stub.GetBalances(exchange_pb2.GetBalancesRequest(venue=venue)),
        ),
    ]
    for route, call in calls:
        fake.fail(route, "garbage", "garbage")  # the try and its retry
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call()
        assert (route, raised.value.code(), error_info(raised.value).reason) == (
            route,
            grpc.StatusCode.UNAVAILABLE,
            "VENUE_BAD_RESPONSE",
        )

    candles = await stub.GetCandles(_candles_request(case, 3))  # not cached as empty
    assert len(candles.candles) == 3


async def test_failing_reads_are_retried_then_mapped(
    case: Case, exchange: Exchange, fake: FakeVenue
) -> None:
    request = exchange_pb2.GetTickerRequest(venue=case.exchange_id, symbol="BTC/USDT")
    faults = [
        ("429", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("500", grpc.StatusCode.UNAVAILABLE),
        ("garbage", grpc.StatusCode.UNAVAILABLE),
        ("timeout", grpc.StatusCode.UNAVAILABLE),
    ]
    for fault, code in faults:
        before = fake.calls[case.ticker_route]
        fake.fail(case.ticker_route, fault, fault)  # one try and one retry

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await exchange.stub.GetTicker(request)

        assert (fault, raised.value.code()) == (fault, code)
        assert fake.calls[case.ticker_route] == before + 2
        fake.fail(case.ticker_route, fault)  # one failure only: the retry answers
        assert (await exchange.stub.GetTicker(request)).ticker.last == case.last


# -- orders --------------------------------------------------------------------------------


async def test_create_and_cancel_a_limit_order(
    case: Case, exchange: Exchange, fake: FakeVenue
) -> None:
    placed = await exchange.stub.SubmitOrder(
        submit(case, client_order_id="lim1", type=LIMIT, price="60000.5")
    )
    assert placed.order.status == common_pb2.ORDER_STATUS_OPEN
    venue_order = fake.orders["lim1"]
    assert placed.order.venue_order_id == next(
        venue_order[key] for key in ("orderId", "ordId", "txid") if key in venue_order
    )

    canceled = await exchange.stub.CancelOrder(
        exchange_pb2.CancelOrderRequest(order_id=placed.order.order_id)
    )

    assert canceled.order.status == common_pb2.ORDER_STATUS_CANCELED
    assert venue_order.get("status", venue_order.get("state")) in ("CANCELED", "canceled")
    assert fake.calls[case.cancel_route] == 1


async def test_a_filled_market_order_is_filled_with_the_venues_trade_id(
    case: Case, exchange: Exchange
) -> None:
    placed = await exchange.stub.SubmitOrder(submit(case, client_order_id="mkt1"))

    price, trade_id, fee = case.market_fill
    assert placed.order.status == common_pb2.ORDER_STATUS_FILLED
    assert placed.order.average_fill_price == price
    stream = exchange.stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest())
    message = await stream.read()
    stream.cancel()
    assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
    execution = message.execution
    assert (execution.venue, execution.trade_id, execution.quantity) == (
        case.exchange_id,
        trade_id,
        "0.001",
    )
    assert (execution.fee, execution.fee_currency) == (fee, "USDT")


# Every failure that does not prove a refusal leaves the outcome unknown.
UNKNOWN_FAULTS = ["429", "500", "503", "garbage", "timeout", "system-error"]


async def test_a_create_is_sent_once_whatever_fails_and_never_guessed_rejected(
    case: Case, exchange: Exchange, fake: FakeVenue
) -> None:
    for number, fault in enumerate(UNKNOWN_FAULTS):
        fake.fail(case.create_route, fault)
        client_order_id = f"f{number}"

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await exchange.stub.SubmitOrder(submit(case, client_order_id=client_order_id))
        again = await exchange.stub.SubmitOrder(submit(case, client_order_id=client_order_id))

        assert (fault, raised.value.code(), error_info(raised.value).reason) == (
            fault,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "VENUE_OUTCOME_UNKNOWN",
        )
        assert (fault, again.order.status) == (fault, common_pb2.ORDER_STATUS_PENDING_NEW)
        assert list(again.order.reject_reasons) == ["VENUE_OUTCOME_UNKNOWN"]
        assert fake.calls[case.create_route] == number + 1  # sent once, never retried
    assert fake.orders == {}


async def test_a_refusal_rejects_the_order(case: Case, exchange: Exchange, fake: FakeVenue) -> None:
    fake.fail(case.create_route, "insufficient")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(submit(case, client_order_id="poor1"))
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await exchange.stub.SubmitOrder(submit(case, client_order_id="poor1"))

    assert raised.value.code() in (
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert again.value.code() == raised.value.code()
    assert fake.calls[case.create_route] == 1


async def test_a_create_whose_answer_is_lost_is_found_not_repeated(
    case: Case, exchange: Exchange, fake: FakeVenue
) -> None:
    fake.fail(case.create_route, "timeout-after")  # placed, but the answer times out

    placed = await exchange.stub.SubmitOrder(submit(case, client_order_id="lost1"))
    again = await exchange.stub.SubmitOrder(submit(case, client_order_id="lost1"))

    assert placed.order.status == common_pb2.ORDER_STATUS_FILLED
    assert again.order == placed.order
    assert list(fake.orders) == ["lost1"]
    assert fake.calls[case.create_route] == 1


async def test_an_order_placed_after_the_clients_timeout_is_reconciled(
    start_exchange: StartExchange, case: Case, fake: FakeVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(case, fake, monkeypatch, order_poll_seconds="0.1")
    async with start_exchange(**settings) as exchange:
        fake.fail(case.create_route, "place-late")  # the venue places it after we gave up

        reason = ""
        try:
            answer = await exchange.stub.SubmitOrder(submit(case, client_order_id="late1"))
            order_id = answer.order.order_id
        except grpc.aio.AioRpcError as raised:
            reason, order_id = error_info(raised).reason, error_info(raised).metadata["order_id"]
        filled = await wait_for_status(exchange, order_id, common_pb2.ORDER_STATUS_FILLED)
        stream = exchange.stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest())
        message = await stream.read()
        stream.cancel()

    # Kraken's rate limit spaces the immediate lookups past the late placement: there
    # the lookup finds the order at once; elsewhere the outcome is unknown until a poll.
    assert reason == ("" if case is KRAKEN else "VENUE_OUTCOME_UNKNOWN")
    assert list(filled.reject_reasons) == []
    assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
    assert (message.execution.client_order_id, message.execution.quantity) == ("late1", "0.001")
    assert message.execution.trade_id == case.market_fill[1]
    assert fake.calls[case.create_route] == 1


async def test_an_unknown_order_is_reconciled_at_start(
    start_exchange: StartExchange, case: Case, fake: FakeVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(case, fake, monkeypatch)
    async with start_exchange(**settings) as exchange:
        fake.fail(case.create_route, "timeout")  # no answer, and nothing placed...
        fake.fail(case.lookup_route, "timeout", "timeout")  # ...nor an answer to the lookup
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await exchange.stub.SubmitOrder(
                submit(case, client_order_id="rst1", type=LIMIT, price="60000")
            )
    order_id = error_info(raised.value).metadata["order_id"]
    # Meanwhile the order did reach the venue (another path, a retry by the venue's gateway).
    fake.orders.clear()
    placed_elsewhere = await _place_directly(case, fake, "rst1")

    async with start_exchange(**settings) as exchange:
        found = await wait_for_status(exchange, order_id, common_pb2.ORDER_STATUS_OPEN)

    assert found.venue_order_id == placed_elsewhere
    assert fake.calls[case.create_route] == 1


async def _place_directly(case: Case, fake: Any, client_order_id: str) -> str:
    """Puts a resting 0.001 BTC buy at 60000 into the fake as if it had been placed."""
    if case is BINANCE:
        placed = fake._create(
            {
                "symbol": "BTCUSDT",
                "newClientOrderId": client_order_id,
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.001",
                "price": "60000",
            }
        )
        return str(placed["orderId"])
    if case is KRAKEN:
        fake._create(
            {
                "pair": "XBTUSDT",
                "cl_ord_id": client_order_id,
                "type": "buy",
                "ordertype": "limit",
                "volume": "0.001",
                "price": "60000",
            }
        )
        return str(fake.orders[client_order_id]["txid"])
    fake._create(
        {
            "instId": "BTC-USDT",
            "clOrdId": client_order_id,
            "side": "buy",
            "ordType": "limit",
            "sz": "0.001",
            "px": "60000",
        }
    )
    return str(fake.orders[client_order_id]["ordId"])


async def test_fills_of_a_resting_order_are_picked_up_by_polling(
    start_exchange: StartExchange, case: Case, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(case, fake, monkeypatch, order_poll_seconds="0.05")
    async with start_exchange(**settings) as exchange:
        placed = await exchange.stub.SubmitOrder(
            submit(case, client_order_id="rest1", type=LIMIT, price="60000")
        )
        assert placed.order.status == common_pb2.ORDER_STATUS_OPEN
        trade = fake.fill("rest1", Decimal("60000"))  # the venue fills it later, at the limit

        await wait_for_status(exchange, placed.order.order_id, common_pb2.ORDER_STATUS_FILLED)
        stream = exchange.stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest())
        message = await stream.read()
        stream.cancel()

    assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
    assert (message.execution.client_order_id, message.execution.quantity) == ("rest1", "0.001")
    assert message.execution.price == "60000"
    assert message.execution.trade_id == str(trade.get("id", trade.get("tradeId")))


async def test_cancel_races_settle_on_what_the_venue_says(
    case: Case, exchange: Exchange, fake: Any
) -> None:
    async def resting(client_order_id: str) -> Any:
        placed = await exchange.stub.SubmitOrder(
            submit(case, client_order_id=client_order_id, type=LIMIT, price="60000")
        )
        return placed.order

    # Canceled at the venue first (another client, the venue's own expiry): CANCELED.
    first = await resting("race1")
    fake.cancel_at_venue("race1")
    canceled = await exchange.stub.CancelOrder(
        exchange_pb2.CancelOrderRequest(order_id=first.order_id)
    )
    assert canceled.order.status == common_pb2.ORDER_STATUS_CANCELED

    # Filled before the cancel arrived: FILLED, with its fill.
    second = await resting("race2")
    fake.fill("race2", Decimal("60000"))
    settled = await exchange.stub.CancelOrder(
        exchange_pb2.CancelOrderRequest(order_id=second.order_id)
    )
    assert (settled.order.status, settled.order.filled_quantity) == (
        common_pb2.ORDER_STATUS_FILLED,
        "0.001",
    )

    # A garbled cancel answer while the order lives: never recorded CANCELED.
    third = await resting("race3")
    fake.fail(case.cancel_route, "garbage")
    with pytest.raises(grpc.aio.AioRpcError):
        await exchange.stub.CancelOrder(exchange_pb2.CancelOrderRequest(order_id=third.order_id))
    stored = await exchange.stub.GetOrder(exchange_pb2.GetOrderRequest(order_id=third.order_id))
    assert stored.order.status == common_pb2.ORDER_STATUS_OPEN


async def test_keys_are_never_logged_nor_returned(
    case: Case, exchange: Exchange, fake: FakeVenue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail(case.create_route, "500")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(submit(case, client_order_id="k1"))
    venues = await exchange.stub.ListVenues(exchange_pb2.ListVenuesRequest())

    shown = caplog.text + str(raised.value.details()) + str(venues) + str(error_info(raised.value))
    for secret in case.credentials.values():
        assert secret not in shown


async def test_stream_tickers_polls_the_venue_once_for_all_subscribers(
    start_exchange: StartExchange, case: Case, fake: FakeVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(case, fake, monkeypatch, ticker_poll_seconds="0.05")
    # The fake's ticker stands still: each message after the first is the refresh that
    # says it still stands (every second by default).
    monkeypatch.setattr(servicer, "TICKER_REFRESH_SECONDS", 0.1)
    request = exchange_pb2.StreamTickersRequest(venue=case.exchange_id, symbols=["BTC/USDT"])
    async with start_exchange(**settings) as exchange:
        streams = [exchange.stub.StreamTickers(request) for _ in range(3)]
        received = [await stream.read() for _ in range(4) for stream in streams]
        for stream in streams:
            stream.cancel()
        polls = exchange.servicer.venues.require(case.exchange_id).tickers_changed.version

    lasts = {r.ticker.last for r in received if isinstance(r, exchange_pb2.StreamTickersResponse)}
    assert lasts == {case.last}
    calls = fake.calls[case.ticker_route] + fake.calls.get("GET /api/v5/market/tickers", 0)
    # One request per poll for all three (each fetching for itself: three per poll), and
    # one for the first read, before the first poll.
    assert calls <= polls + 1


# -- venue rules ---------------------------------------------------------------------------


async def test_a_client_order_id_the_venue_refuses_is_invalid_before_sending(
    case: Case, exchange: Exchange, fake: FakeVenue
) -> None:
    refused = case.refused_client_id

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(submit(case, client_order_id=refused))
    generated = await exchange.stub.SubmitOrder(submit(case))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert case.exchange_id in field_violations(raised.value)["client_order_id"]
    assert generated.order.status == common_pb2.ORDER_STATUS_FILLED
    assert fake.calls[case.create_route] == 1


async def test_a_market_data_only_venue_needs_no_keys_and_takes_no_orders(
    start_exchange: StartExchange, case: Case, fake: FakeVenue
) -> None:
    prefix = f"EXCHANGE__VENUES__{case.exchange_id.upper()}__"
    settings = {
        f"{prefix}EXCHANGE_ID": case.exchange_id,
        f"{prefix}SANDBOX": "false",
        f"{prefix}API_URL": fake.url,
        f"{prefix}TRADING": "false",
    }
    async with start_exchange(**settings) as exchange:
        ticker = await exchange.stub.GetTicker(
            exchange_pb2.GetTickerRequest(venue=case.exchange_id, symbol="BTC/USDT")
        )
        with pytest.raises(grpc.aio.AioRpcError) as order_refused:
            await exchange.stub.SubmitOrder(submit(case, client_order_id="ro1"))
        with pytest.raises(grpc.aio.AioRpcError) as balances_refused:
            await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue=case.exchange_id))
        listed = await exchange.stub.ListVenues(exchange_pb2.ListVenuesRequest())

    # ListVenues says so: the portfolio opens no account for it and risk keeps no book.
    read_only = {venue.name: venue.read_only for venue in listed.venues}
    assert read_only[case.exchange_id] is True
    assert not any(flag for name, flag in read_only.items() if name != case.exchange_id)
    assert ticker.ticker.last == case.last
    for refused in (order_refused.value, balances_refused.value):
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(refused).reason == "VENUE_READ_ONLY"
    assert fake.calls[case.create_route] == 0


def test_a_missing_credential_stops_the_start_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQ_TEST_OKX_KEY", "k")
    monkeypatch.setenv("EQ_TEST_OKX_SECRET", SECRET)
    settings = CcxtVenueSettings(
        exchange_id="okx",
        api_key_env="EQ_TEST_OKX_KEY",
        secret_env="EQ_TEST_OKX_SECRET",  # noqa: S106 - a variable's name
    )

    with pytest.raises(ConfigError) as raised:
        CcxtVenue("okx-main", settings)

    assert "okx-main" in str(raised.value)
    assert "'password'" in str(raised.value)
    assert "\n" not in str(raised.value)


async def test_swaps_are_listed_in_base_units_only_when_asked_and_never_ordered(
    start_exchange: StartExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving_fake_okx(extra_markets=2) as fake:
        spot_only = settings_of(OKX, fake, monkeypatch)
        async with start_exchange(**spot_only) as exchange:
            default = await exchange.stub.ListMarkets(exchange_pb2.ListMarketsRequest(venue="okx"))
        with_swaps = settings_of(OKX, fake, monkeypatch, market_types="spot,swap")
        async with start_exchange(**with_swaps) as exchange:
            listed = await exchange.stub.ListMarkets(exchange_pb2.ListMarketsRequest(venue="okx"))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await exchange.stub.SubmitOrder(
                    order(venue="okx", symbol="C0000X/USDT:USDT", quantity="0.01")
                )

    assert {m.symbol for m in default.markets} == {"BTC/USDT", "C0000X/USDT", "C0001X/USDT"}
    swap = next(m for m in listed.markets if m.symbol == "C0000X/USDT:USDT")
    # One contract is 0.01 C0000X (ctVal): lot and minimum are 1 contract.
    assert (swap.quantity_increment, swap.min_quantity) == ("0.01", "0.01")
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error_info(refused.value).reason == "DERIVATIVES_NOT_SUPPORTED"
    assert fake.calls[OKX.create_route] == 0


async def test_an_order_unknown_past_the_window_is_reported_and_still_reconciled(
    start_exchange: StartExchange, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="edgequant.exchange.orders")
    async with serving_fake_binance() as fake:
        settings = settings_of(
            BINANCE,
            fake,
            monkeypatch,
            order_poll_seconds="0.05",
            unknown_alert_seconds="0.2",
            unknown_slow_poll_seconds="0.5",
        )
        async with start_exchange(**settings) as exchange:
            fake.fail(BINANCE.create_route, "timeout")  # not placed, and no answer
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await exchange.stub.SubmitOrder(submit(BINANCE, client_order_id="old1"))
            order_id = error_info(raised.value).metadata["order_id"]
            for _ in range(200):
                if "order outcome still unknown" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            still = await exchange.stub.GetOrder(exchange_pb2.GetOrderRequest(order_id=order_id))
            # The venue places it after all (a gateway's own retry): reconciliation goes on.
            await _place_directly(BINANCE, fake, "old1")
            fake.fill("old1", Decimal("60000"))
            filled = await wait_for_status(exchange, order_id, common_pb2.ORDER_STATUS_FILLED)

    assert caplog.text.count("order outcome still unknown") == 1
    assert still.order.status == common_pb2.ORDER_STATUS_PENDING_NEW
    assert list(still.order.reject_reasons) == ["VENUE_OUTCOME_UNKNOWN"]
    assert filled.filled_quantity == "0.001"
    assert fake.calls[BINANCE.create_route] == 1


async def test_an_unknown_order_cannot_be_canceled_until_the_venue_knows_it(
    case: Case, exchange: Exchange, fake: FakeVenue
) -> None:
    fake.fail(case.create_route, "500")  # the venue may or may not have it
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.SubmitOrder(
            submit(case, client_order_id="unk1", type=LIMIT, price="60000")
        )
    order_id = error_info(raised.value).metadata["order_id"]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await exchange.stub.CancelOrder(exchange_pb2.CancelOrderRequest(order_id=order_id))
    stored = await exchange.stub.GetOrder(exchange_pb2.GetOrderRequest(order_id=order_id))

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "VENUE_OUTCOME_UNKNOWN"
    assert stored.order.status == common_pb2.ORDER_STATUS_PENDING_NEW
    assert fake.calls[case.cancel_route] == 0
