"""Market data RPCs of the paper venue, and GetCandles served from the database once fetched."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import grpc
import pytest

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from services.exchange import servicer
from services.exchange.markets import Candle
from tests.services.exchange.exchange_testing import Exchange


async def test_venues_and_markets(exchange: Exchange) -> None:
    venues = await exchange.stub.ListVenues(exchange_pb2.ListVenuesRequest())
    markets = await exchange.stub.ListMarkets(exchange_pb2.ListMarketsRequest(venue="paper"))

    assert [(v.name, v.kind) for v in venues.venues] == [("paper", exchange_pb2.VENUE_KIND_PAPER)]
    # Each paper market with its own precision and limits (configs/default.toml).
    assert [
        (m.symbol, m.price_increment, m.quantity_increment, m.min_notional) for m in markets.markets
    ] == [
        ("BTC/USDT", "0.01", "0.00001", "5"),
        ("ETH/USDT", "0.01", "0.0001", "5"),
        ("ADA/USDT", "0.0001", "0.1", "5"),
    ]


async def test_ticker_and_book_come_from_the_replayed_binance_data(exchange: Exchange) -> None:
    ticker = (
        await exchange.stub.GetTicker(
            exchange_pb2.GetTickerRequest(venue="paper", symbol="BTC/USDT")
        )
    ).ticker
    book = (
        await exchange.stub.GetOrderBook(
            exchange_pb2.GetOrderBookRequest(venue="paper", symbol="BTC/USDT", depth=5)
        )
    ).order_book

    # Binance's REST snapshot of 2024-08-08 23:54 UTC: best bid 61837.63 x 3.78826.
    assert (ticker.bid, ticker.bid_size, ticker.ask) == ("61837.63", "3.78826", "61837.64")
    assert len(book.bids) == len(book.asks) == 5
    assert [Decimal(level.price) for level in book.bids] == sorted(
        (Decimal(level.price) for level in book.bids), reverse=True
    )
    assert Decimal(book.asks[0].price) > Decimal(book.bids[0].price)


async def test_stream_tickers_sends_a_market_only_when_it_moved(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No "still standing" refresh within this test, however slow the machine.
    monkeypatch.setattr(servicer, "TICKER_REFRESH_SECONDS", 3600.0)
    stream = exchange.stub.StreamTickers(exchange_pb2.StreamTickersRequest(venue="paper"))

    async def symbol() -> str:
        message = await stream.read()
        assert isinstance(message, exchange_pb2.StreamTickersResponse)
        return message.ticker.symbol

    opening = [await symbol() for _ in range(3)]  # every market once, at once
    await exchange.paper.advance(200, symbol="ETH/USDT")  # only ETH's replay moves
    moved = await symbol()
    await exchange.paper.advance(200, symbol="ETH/USDT")
    moved_again = await symbol()
    stream.cancel()
    assert sorted(opening) == ["ADA/USDT", "BTC/USDT", "ETH/USDT"]
    assert moved == moved_again == "ETH/USDT"


async def test_stream_tickers_sends_a_symbol_at_most_once_per_min_interval(
    exchange: Exchange,
) -> None:
    """A client that needs marks, not every move, asks for fewer messages: over the same
    moves, a stream at the default interval gets several, one at a minute only the first."""
    request = exchange_pb2.StreamTickersRequest(venue="paper", symbols=["ETH/USDT"])
    default = exchange.stub.StreamTickers(request)
    slow = exchange.stub.StreamTickers(
        exchange_pb2.StreamTickersRequest(
            venue="paper", symbols=["ETH/USDT"], min_interval_ms=servicer.MAX_TICKER_INTERVAL_MS
        )
    )
    await default.read()
    await slow.read()
    for _ in range(2):  # two moves, each read by the default stream
        await exchange.paper.advance(200, symbol="ETH/USDT")
        await default.read()
    # The slow stream's next message is a minute away: nothing more is waiting for it.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow.read(), 0.5)
    default.cancel()
    slow.cancel()


@pytest.mark.parametrize("interval", [-1, 60_001])
async def test_stream_tickers_refuses_an_interval_out_of_range(
    exchange: Exchange, interval: int
) -> None:
    stream = exchange.stub.StreamTickers(
        exchange_pb2.StreamTickersRequest(venue="paper", min_interval_ms=interval)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stream.read()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "min_interval_ms" in (raised.value.details() or "")


async def test_stream_tickers_follows_the_replay(exchange: Exchange) -> None:
    stream = exchange.stub.StreamTickers(
        exchange_pb2.StreamTickersRequest(venue="paper", symbols=["BTC/USDT"])
    )
    first = await stream.read()
    await exchange.paper.advance(200)
    second = await stream.read()
    stream.cancel()

    assert isinstance(first, exchange_pb2.StreamTickersResponse)
    assert isinstance(second, exchange_pb2.StreamTickersResponse)
    assert second.ticker.time.ToMilliseconds() > first.ticker.time.ToMilliseconds()
    assert second.ticker.last != ""


async def test_unknown_symbol_is_invalid_argument(exchange: Exchange) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.GetTicker(
            exchange_pb2.GetTickerRequest(venue="paper", symbol="ETH/BTC")
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_paper_candles_come_from_the_venue_every_time(exchange: Exchange) -> None:
    """The paper history is shifted onto the wall clock at each start: it is not cached
    in the database (a stored copy would go stale after a restart)."""
    await exchange.paper.advance(9000)  # the replay clock passes several whole minutes
    calls: list[str] = []
    fetch = exchange.paper.candles

    async def counted(
        symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[Candle]:
        calls.append(timeframe)
        return await fetch(symbol, timeframe, since_ms, limit)

    exchange.paper.candles = counted  # type: ignore[method-assign]
    request = exchange_pb2.GetCandlesRequest(
        venue="paper", symbol="BTC/USDT", timeframe=common_pb2.TIMEFRAME_1M, limit=3
    )

    first = await exchange.stub.GetCandles(request)
    again = await exchange.stub.GetCandles(request)

    assert len(first.candles) == 3
    assert again == first
    assert calls == ["1m", "1m"]
    opens = [c.open_time.ToMilliseconds() for c in first.candles]
    assert opens == sorted(opens)
    assert all(Decimal(c.low) <= Decimal(c.open) <= Decimal(c.high) for c in first.candles)


async def test_an_unknown_venue_is_not_found(exchange: Exchange) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.GetBalances(exchange_pb2.GetBalancesRequest(venue="nowhere"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
