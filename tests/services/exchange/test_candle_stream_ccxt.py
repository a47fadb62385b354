"""StreamCandles on ccxt venues: real ccxt, through the service over gRPC, against the fake
Binance, OKX and Kraken on 127.0.0.1 with their recorded candle rows. The fakes publish
hour bars on a clock that runs 7,200 times the wall clock (the stream runs on the same
clock), as a venue does: the forming bar with partial figures, a closed bar possibly late,
a quiet bar never. The stream must emit each closed bar once, in order, with its final
figures (what GetCandles answers afterwards), mark the late one and log an alert for it,
and skip the one never published."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from services.exchange.candle_stream import CandleStreams, Timing
from tests.services.exchange import fake_binance, fake_kraken, fake_okx
from tests.services.exchange.exchange_testing import Exchange, StartExchange
from tests.services.exchange.fake_venue import FakeVenue, serving
from tests.services.exchange.test_ccxt_venue import BINANCE, KRAKEN, OKX, Case, settings_of

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
SCALE = 3600  # venue time per wall time: an hour bar a second
DAY_ONE = 1_735_689_600_000  # 2025-01-01 00:00 UTC: the fakes' first bar
# In venue time: polls a minute after a close and a minute apart; late past 30 minutes.
FAST = Timing(
    first_poll_ms=MINUTE_MS,
    retry_ms=MINUTE_MS,
    late_after_ms=30 * MINUTE_MS,
    late_retry_ms=2 * MINUTE_MS,
)


class FastClock:
    """The venue's time, SCALE times faster than the wall clock, from `start_ms`."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.started = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self.started) * 1000 * SCALE)

    async def sleep_ms(self, milliseconds: int) -> None:
        await asyncio.sleep(max(milliseconds, 0) / 1000 / SCALE)


@dataclass
class Tape:
    """Which hour bars the venue shows now: every bar opened by its clock, the forming one
    with partial figures, a `late` one (and all after it) only `lag` after its close, a
    `quiet` one never."""

    clock: FastClock
    recorded: list[list[Any]]  # the venue's own rows, cycled bar after bar
    late: dict[int, int] = field(default_factory=dict)  # open -> lag after its close
    quiet: set[int] = field(default_factory=set)

    def shown(self) -> list[tuple[int, list[Any], bool]]:
        """(open time, the venue's row, forming?), oldest first."""
        now = self.clock.now_ms()
        bars = []
        for n in range((now - DAY_ONE) // HOUR_MS + 1):
            opened = DAY_ONE + n * HOUR_MS
            if opened in self.late and now < opened + HOUR_MS + self.late[opened]:
                break
            if opened not in self.quiet:
                row = list(self.recorded[n % len(self.recorded)])
                bars.append((opened, row, now < opened + HOUR_MS))
        return bars


def _partial(row: list[Any], price: int, volume: int) -> list[Any]:
    """A forming bar: only its first trade so far (open = high = low = close)."""
    row[price + 1] = row[price + 2] = row[price + 3] = row[price]
    row[volume] = "0.001"
    return row


@dataclass
class LiveBinance(fake_binance.FakeBinance):
    tape: Tape | None = None

    def answer(self, request: Request, route: str, body: str) -> Response:
        if route != "GET /api/v3/klines" or self.tape is None:
            return super().answer(request, route, body)
        query = request.query_params
        start = int(query.get("startTime", DAY_ONE))
        rows = []
        for opened, row, forming in self.tape.shown():
            if opened >= start:
                row[0], row[6] = opened, opened + HOUR_MS - 1
                rows.append(_partial(row, 1, 5) if forming else row)
        return JSONResponse(rows[: min(int(query.get("limit", 500)), self.klines_page)])


@dataclass
class LiveOkx(fake_okx.FakeOkx):
    tape: Tape | None = None

    def answer(self, request: Request, route: str, body: str) -> Response:
        history = route == "GET /api/v5/market/history-candles"
        if self.tape is None or not (history or route == "GET /api/v5/market/candles"):
            return super().answer(request, route, body)
        query = request.query_params
        low = int(query.get("before", DAY_ONE - 1))
        high = int(query.get("after", 2**62))
        rows = []
        for opened, row, forming in self.tape.shown():
            if low < opened < high:
                row[0], row[8] = str(opened), "0" if forming else "1"
                rows.append(_partial(row, 1, 5) if forming else row)
        limit = min(int(query.get("limit", 100)), self.history_page if history else 300)
        return JSONResponse({"code": "0", "msg": "", "data": list(reversed(rows))[:limit]})


@dataclass
class LiveKraken(fake_kraken.FakeKraken):
    tape: Tape | None = None

    def answer(self, request: Request, route: str, body: str) -> Response:
        if route != "GET /0/public/OHLC" or self.tape is None:
            return super().answer(request, route, body)
        since = int(request.query_params.get("since", DAY_ONE // 1000 - 1))
        rows = []
        for opened, row, forming in self.tape.shown():
            if opened // 1000 > since:
                row[0] = opened // 1000
                rows.append(_partial(row, 1, 6) if forming else row)
        rows = rows[: self.ohlc_page]
        result = {"XBTUSDT": rows, "last": rows[-1][0] if rows else since}
        return JSONResponse({"error": [], "result": result})


LIVE: dict[str, tuple[Case, type[FakeVenue], list[list[Any]]]] = {
    "binance": (BINANCE, LiveBinance, fake_binance.DATA["klines"]),
    "okx": (OKX, LiveOkx, list(reversed(fake_okx.DATA["candles"]["data"]))),
    "kraken": (KRAKEN, LiveKraken, fake_kraken.DATA["ohlc"]["result"]["XBTUSDT"][:5]),
}


@pytest.fixture(params=list(LIVE))
async def live(
    request: pytest.FixtureRequest,
    start_exchange: StartExchange,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Case, Any, Exchange]]:
    case, fake_class, _ = LIVE[request.param]
    async with serving(fake_class) as fake:
        settings = settings_of(case, fake, monkeypatch)
        async with start_exchange(**settings) as exchange:
            # The fakes have no rate limit: ccxt's own for Kraken (1.2 s an OHLC read)
            # would make the hour bars of the fast clock late one and all.
            venue = exchange.servicer.venues.get(case.exchange_id)
            venue.client.throttler.config["refillRate"] = 1.0  # type: ignore[union-attr]
            yield case, fake, exchange


def _stamp(milliseconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp


async def _live_candles(
    exchange: Exchange, request: exchange_pb2.StreamCandlesRequest, last: int
) -> list[Any]:
    live = exchange_pb2.StreamCandlesRequest()
    live.CopyFrom(request)
    live.ClearField("after")
    candles = []
    call = exchange.stub.StreamCandles(live)
    async for response in call:
        candles.append(response.candle)
        if response.candle.open_time.ToMilliseconds() >= last:
            break
    call.cancel()
    return candles


async def test_closed_bars_come_once_with_their_final_figures_late_marked_quiet_skipped(
    live: tuple[Case, Any, Exchange], caplog: pytest.LogCaptureFixture
) -> None:
    case, fake, exchange = live
    first_live = DAY_ONE + 40 * HOUR_MS  # the bar forming when the stream starts
    late, quiet = first_live + 2 * HOUR_MS, first_live + 4 * HOUR_MS
    clock = FastClock(first_live + 30 * MINUTE_MS)
    fake.tape = Tape(clock, LIVE[case.exchange_id][2], late={late: 50 * MINUTE_MS}, quiet={quiet})
    # The stream on the venue's fast clock: the one thing changed in the service.
    exchange.servicer.candle_streams = CandleStreams(
        exchange.servicer.candles, timing=FAST, clock_of=lambda _venue: clock
    )
    last = first_live + 6 * HOUR_MS
    request = exchange_pb2.StreamCandlesRequest(
        venue=case.exchange_id,
        symbol="BTC/USDT",
        timeframe=common_pb2.TIMEFRAME_1H,
        after=_stamp(first_live - 3 * HOUR_MS),  # the two bars before: from history
    )
    received: list[exchange_pb2.StreamCandlesResponse] = []
    with caplog.at_level(logging.WARNING, logger="edgequant.exchange.candles"):
        call = exchange.stub.StreamCandles(request)
        other = asyncio.create_task(_live_candles(exchange, request, last))
        async with asyncio.timeout(60):
            async for response in call:
                received.append(response)
                opened = response.candle.open_time.ToMilliseconds()
                if opened == first_live:
                    # One loop polls for both subscribers; its polls now fail for a while
                    # (each read tried twice): it reconnects and goes on.
                    assert len(exchange.servicer.candle_streams.loops) == 1
                    fake.fail(case.candles_route, *["503"] * 4)
                if opened >= last:
                    break
        call.cancel()
        other_received = await other

    opens = [r.candle.open_time.ToMilliseconds() for r in received]
    assert opens == [first_live + n * HOUR_MS for n in (-2, -1, 0, 1, 2, 3, 5, 6)]
    assert [r.catch_up for r in received] == [True, True] + [False] * 6
    late_one = received[opens.index(late)]
    assert late_one.late
    assert late_one.emitted_time.ToMilliseconds() - late_one.close_time.ToMilliseconds() >= (
        50 * MINUTE_MS
    )
    alerts = [r for r in caplog.records if r.getMessage().startswith("closed candle late")]
    assert late in {getattr(r, "open_time_ms", None) for r in alerts}
    for response in received:  # never before its close on the venue's clock
        assert response.emitted_time.ToMilliseconds() >= response.close_time.ToMilliseconds()

    # The other subscriber (no `after`) got the same bars from the same loop.
    live_part = [r.candle for r in received if not r.catch_up]
    assert other_received
    assert other_received == live_part[live_part.index(other_received[0]) :]
    assert fake.faults[case.candles_route] == []  # the failing polls did happen

    # Exactly what GetCandles answers for those bars afterwards: the final figures, never
    # a forming bar's partial ones.
    answered = await exchange.stub.GetCandles(
        exchange_pb2.GetCandlesRequest(
            venue=case.exchange_id,
            symbol="BTC/USDT",
            timeframe=common_pb2.TIMEFRAME_1H,
            start_time=_stamp(opens[0]),
            end_time=_stamp(last + HOUR_MS),
            limit=100,
        )
    )
    assert [r.candle for r in received] == list(answered.candles)
