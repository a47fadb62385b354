"""StreamCandles on the paper venue, over real gRPC: each minute candle once it is closed,
exactly once and in order, equal to what GetCandles answers for it afterwards; a
subscriber that comes back with `after` misses none. The replay clock is stopped and
stepped (paper time runs ahead of the wall clock with it), so many minutes pass in a few
seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import Exchange, error_info, field_violations

MINUTE_MS = 60_000
SYMBOL = "BTC/USDT"
STEP = 200  # replay events stepped at a time (a few seconds of the capture)


def _request(**fields: Any) -> exchange_pb2.StreamCandlesRequest:
    request: dict[str, Any] = {
        "venue": "paper",
        "symbol": SYMBOL,
        "timeframe": common_pb2.TIMEFRAME_1M,
        **fields,
    }
    return exchange_pb2.StreamCandlesRequest(**request)


@asynccontextmanager
async def _subscribed(
    exchange: Exchange, request: exchange_pb2.StreamCandlesRequest
) -> AsyncIterator[list[exchange_pb2.StreamCandlesResponse]]:
    """The responses of a StreamCandles call, as they arrive; the call ends on exit."""
    received: list[exchange_pb2.StreamCandlesResponse] = []
    call = exchange.stub.StreamCandles(request)

    async def read() -> None:
        async for response in call:
            received.append(response)

    task = asyncio.create_task(read())
    try:
        yield received
    finally:
        call.cancel()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


async def _step_until(
    exchange: Exchange, *streams: list[exchange_pb2.StreamCandlesResponse], count: int
) -> None:
    """Steps the replay until every stream holds `count` candles."""
    for _ in range(2000):
        if all(len(stream) >= count for stream in streams):
            return
        await exchange.paper.advance(STEP)
        await asyncio.sleep(0.005)  # the streams read and deliver
    raise AssertionError(f"the streams got {[len(s) for s in streams]} candles, not {count}")


async def _candles_between(exchange: Exchange, start_ms: int, end_ms: int) -> list[Any]:
    start, end = Timestamp(), Timestamp()
    start.FromMilliseconds(start_ms)
    end.FromMilliseconds(end_ms)
    answer = await exchange.stub.GetCandles(
        exchange_pb2.GetCandlesRequest(
            venue="paper",
            symbol=SYMBOL,
            timeframe=common_pb2.TIMEFRAME_1M,
            start_time=start,
            end_time=end,
            limit=1000,
        )
    )
    return list(answer.candles)


def _open_ms(response: exchange_pb2.StreamCandlesResponse) -> int:
    return response.candle.open_time.ToMilliseconds()


def _assert_closed_and_consecutive(stream: list[exchange_pb2.StreamCandlesResponse]) -> None:
    opens = [_open_ms(r) for r in stream]
    # The replay trades every minute: no bar is missing, none comes twice, in order.
    assert opens == list(range(opens[0], opens[0] + MINUTE_MS * len(opens), MINUTE_MS))
    for response in stream:
        assert response.close_time.ToMilliseconds() == _open_ms(response) + MINUTE_MS
        # Never a forming bar: emitted at or after its close, on the venue's clock.
        assert response.emitted_time.ToMilliseconds() >= response.close_time.ToMilliseconds()
        assert not response.late


async def test_each_closed_candle_comes_once_and_equals_get_candles(exchange: Exchange) -> None:
    async with (
        _subscribed(exchange, _request()) as first,
        _subscribed(exchange, _request()) as second,
    ):
        await _step_until(exchange, first, second, count=1)
        # Two subscribers of one key: one loop serves both.
        assert len(exchange.servicer.candle_streams.loops) == 1
        await _step_until(exchange, first, second, count=16)  # three replay laps and more
    await asyncio.sleep(0.05)
    # The last subscriber gone, its loop is gone.
    assert exchange.servicer.candle_streams.loops == {}

    _assert_closed_and_consecutive(first)
    assert not any(r.catch_up for r in first)
    shared = min(len(first), len(second))
    assert [r.candle for r in first[:shared]] == [r.candle for r in second[:shared]]
    answered = await _candles_between(
        exchange, _open_ms(first[0]), first[-1].close_time.ToMilliseconds()
    )
    assert [r.candle for r in first] == answered


async def test_a_subscriber_back_with_after_misses_nothing(exchange: Exchange) -> None:
    async with _subscribed(exchange, _request()) as before:
        await _step_until(exchange, before, count=4)
    last_seen = before[3]
    # Minutes pass with nobody subscribed (the loop is stopped meanwhile).
    while exchange.paper.clock_ms() < before[-1].close_time.ToMilliseconds() + 3 * MINUTE_MS:
        await exchange.paper.advance(STEP)
    async with _subscribed(exchange, _request(after=last_seen.candle.open_time)) as after:
        await _step_until(exchange, after, count=10)

    _assert_closed_and_consecutive(after)
    assert _open_ms(after[0]) == _open_ms(last_seen) + MINUTE_MS
    caught_up = [r.catch_up for r in after]
    # History first (the minutes missed), then live, each once.
    assert caught_up[0]
    assert caught_up == sorted(caught_up, reverse=True)
    assert not caught_up[-1]
    answered = await _candles_between(
        exchange, _open_ms(before[0]), after[-1].close_time.ToMilliseconds()
    )
    assert [r.candle for r in [*before[:4], *after]] == answered


async def _stream_error(exchange: Exchange, **fields: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async for _ in exchange.stub.StreamCandles(_request(**fields)):
            pass
    return failed.value


async def test_bad_requests_are_refused_naming_the_field(exchange: Exchange) -> None:
    unknown_venue = await _stream_error(exchange, venue="nowhere")
    assert unknown_venue.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(unknown_venue).reason == "UNKNOWN_VENUE"

    unknown_symbol = await _stream_error(exchange, symbol="DOGE/EUR")
    assert unknown_symbol.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "symbol" in field_violations(unknown_symbol)

    for timeframe in (common_pb2.TIMEFRAME_UNSPECIFIED, common_pb2.TIMEFRAME_1MO):
        bad_timeframe = await _stream_error(exchange, timeframe=timeframe)
        assert bad_timeframe.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "timeframe" in field_violations(bad_timeframe)

    too_old = Timestamp()
    too_old.FromMilliseconds(exchange.paper.clock_ms() - 2000 * MINUTE_MS)
    far_back = await _stream_error(exchange, after=too_old)
    assert far_back.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after" in field_violations(far_back)

    # Refused before anything started.
    assert exchange.servicer.candle_streams.loops == {}
