"""StreamCandles: each closed candle of a (venue, symbol, timeframe), once, in order.

One loop per key serves every subscriber of it (a `Fanout`): started by the first one,
stopped when the last one leaves. The loop keeps a cursor, the open time of the next
candle it will publish; a bar is published only once it is closed, never while it forms.

- A venue whose candles are final the moment they close (the replayed paper venue builds
  them from its own trades, stamped on its own clock) is read at each close, woken by
  its market data or by the clock: every bar before the close is final.
- Any other venue (ccxt, paper-live) is polled just after each close. A bar counts as
  closed by its timestamp (open_time + timeframe <= the venue's time), whatever the venue
  says about it. A closed bar the venue has not published yet is asked for again every
  `retry_ms`; past `late_after_ms` an alert is logged, and the candle, when it comes, is
  marked late. A newer bar published past a missing one proves the missing one will
  never come (no trades in it): the loop moves on, and the gap shows in the open times.
  A poll that fails (venue unreachable) is retried by `common.reconnect`.

A subscriber with `after` first gets, from history (the candle cache GetCandles reads),
the closed candles opening after it and before the loop's cursor, then the loop's: the
cursor is read in the same step as the subscription is registered, so nothing falls
between the two and nothing comes twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from common.errors import (
    DeadlineExceeded,
    EdgeQuantError,
    FieldViolation,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from common.fanout import Fanout
from common.reconnect import Reconnect
from services.exchange.candle_cache import MAX_LIMIT, CandleCache
from services.exchange.markets import Candle
from services.exchange.venue import Venue

log = logging.getLogger("edgequant.exchange.candles")

# How far back `after` may reach, in candles: one GetCandles page.
MAX_CATCH_UP = MAX_LIMIT
# What a failed poll of a remote venue raises when the venue is away for a while.
RETRIED: tuple[type[BaseException], ...] = (
    Unavailable,
    DeadlineExceeded,
    ResourceExhausted,
    ConnectionError,
    OSError,
)


@dataclass(frozen=True)
class ClosedCandle:
    candle: Candle
    close_ms: int
    # When it was published, on the venue's clock.
    emitted_ms: int
    # Published past the venue's deadline (an alert was logged).
    late: bool = False
    # From history, for a subscriber's `after`.
    catch_up: bool = False


@dataclass(frozen=True)
class Timing:
    """When a remote venue is polled, in milliseconds of the venue's clock."""

    # After a close, before the first poll: venues publish a closed bar a moment late.
    first_poll_ms: int = 500
    # Between polls while a closed bar is missing, until it is late.
    retry_ms: int = 1000
    # A bar missing this long after its close is late: an alert, then `late` on it.
    late_after_ms: int = 15_000
    # Between polls once a bar is late (a venue that publishes nothing for a quiet bar
    # shows it only with the next bar).
    late_retry_ms: int = 5000


class Clock(Protocol):
    """The venue's time; tests run a faster one."""

    def now_ms(self) -> int: ...
    async def sleep_ms(self, milliseconds: int) -> None: ...


class VenueClock:
    def __init__(self, venue: Venue) -> None:
        self._venue = venue

    def now_ms(self) -> int:
        return self._venue.clock_ms()

    async def sleep_ms(self, milliseconds: int) -> None:
        await asyncio.sleep(max(milliseconds, 0) / 1000)


Item = ClosedCandle | EdgeQuantError
Key = tuple[str, str, str]


class CandleLoop:
    """The one loop of a (venue, symbol, timeframe)."""

    def __init__(
        self,
        venue: Venue,
        symbol: str,
        timeframe: str,
        *,
        width_ms: int,
        clock: Clock,
        timing: Timing,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.timeframe = timeframe
        self.width = width_ms
        self.clock = clock
        self.timing = timing
        name = f"{venue.info.name} {symbol} {timeframe}"
        self.fanout: Fanout[Item] = Fanout(
            f"{name} candles", "read the missed candles with GetCandles (or pass `after`)"
        )
        # The open time of the next candle to publish: the one forming now.
        self.cursor = clock.now_ms() // width_ms * width_ms
        self.reconnect = Reconnect(f"{name} candles", retried=RETRIED)
        self._alerted_ms: int | None = None  # the missing bar an alert was logged for
        self.task = asyncio.create_task(self._run(), name=f"candles {name}")

    @property
    def final_at_close(self) -> bool:
        return bool(getattr(self.venue, "candles_final_at_close", False))

    async def _run(self) -> None:
        try:
            if self.final_at_close:
                await self._follow_local()
            else:
                await self.reconnect.forever(self._poll_remote)
        except EdgeQuantError as error:  # a permanent one (delisted): every subscriber is told
            log.warning(
                "candle stream stopped",
                extra={"venue": self.venue.info.name, "symbol": self.symbol, "error": str(error)},
            )
            self.fanout.publish(error)
        except Exception:
            log.exception("candle stream failed", extra={"venue": self.venue.info.name})
            self.fanout.publish(Unavailable("the candle stream failed; subscribe again"))

    # -- a venue whose bars are final at their close -----------------------------------------

    async def _follow_local(self) -> None:
        seen = -1
        while True:
            closed_end = self.clock.now_ms() // self.width * self.width
            if closed_end > self.cursor:
                for candle in await self._read(self.cursor, closed_end):
                    self._publish(candle)
                self.cursor = closed_end
            wait_ms = self.cursor + self.width - self.clock.now_ms()
            if wait_ms <= 0:
                continue
            # Its market data moves its clock (a replay ahead of the wall clock), the wall
            # clock moves it otherwise.
            with contextlib.suppress(TimeoutError):
                seen = await asyncio.wait_for(
                    self.venue.tickers_changed.wait(seen), timeout=wait_ms / 1000
                )

    # -- a venue that is polled ----------------------------------------------------------------

    async def _poll_remote(self) -> None:
        while True:
            now = self.clock.now_ms()
            closed_end = now // self.width * self.width
            if self.cursor < closed_end:
                await self._catch_up_remote(closed_end)
            now = self.clock.now_ms()
            if self.cursor >= now // self.width * self.width:
                self._alerted_ms = None
                next_poll = self.cursor + self.width + self.timing.first_poll_ms
                await self.clock.sleep_ms(next_poll - now)
                continue
            overdue_ms = now - (self.cursor + self.width)
            if overdue_ms < self.timing.late_after_ms:
                await self.clock.sleep_ms(self.timing.retry_ms)
                continue
            if self._alerted_ms != self.cursor:
                self._alerted_ms = self.cursor
                log.warning(
                    "closed candle late: the venue has not published it",
                    extra={
                        "venue": self.venue.info.name,
                        "symbol": self.symbol,
                        "timeframe": self.timeframe,
                        "open_time_ms": self.cursor,
                        "overdue_ms": overdue_ms,
                    },
                )
            await self.clock.sleep_ms(self.timing.late_retry_ms)

    async def _catch_up_remote(self, closed_end: int) -> None:
        """Publishes what the venue has of [cursor, closed_end), oldest first, stopping at
        the first bar it has not published (unless a newer bar shows it never will)."""
        newer_seen = False
        while self.cursor < closed_end:
            wanted = min((closed_end - self.cursor) // self.width + 1, MAX_LIMIT)
            rows = sorted(
                await self.venue.candles(self.symbol, self.timeframe, self.cursor, wanted),
                key=lambda c: c.open_time_ms,
            )
            self.reconnect.connected()
            if not rows:
                if newer_seen:
                    # A newer bar was out before this read and the cursor's still is not:
                    # venues publish in order, so it never will be.
                    self._skipped(self.cursor, self.cursor + self.width)
                    self.cursor += self.width
                    newer_seen = False
                    continue
                if await self._newer_shows():
                    newer_seen = True
                    continue  # read the cursor's bar again: it may have come meanwhile
                return
            newer_seen = False
            progressed = False
            for candle in rows:
                if self.cursor <= candle.open_time_ms < closed_end:
                    if candle.open_time_ms > self.cursor:
                        self._skipped(self.cursor, candle.open_time_ms)
                    self._publish(candle)
                    self.cursor = candle.open_time_ms + self.width
                    progressed = True
            if any(c.open_time_ms >= closed_end for c in rows) and self.cursor < closed_end:
                self._skipped(self.cursor, closed_end)  # a newer bar: these never come
                self.cursor = closed_end
                progressed = True
            if not progressed or len(rows) < wanted:
                return

    async def _newer_shows(self) -> bool:
        """Whether the venue has a bar after the cursor's missing one. Asked apart: a
        venue's reads from a `since` it has no bar at can come back empty however much
        follows it (the ccxt venue then asks ever smaller windows from that point)."""
        after = self.cursor + self.width
        rows = await self.venue.candles(self.symbol, self.timeframe, after, 2)
        return any(c.open_time_ms >= after for c in rows)

    def _skipped(self, start_ms: int, end_ms: int) -> None:
        log.info(
            "the venue published no candle for a span (no trades)",
            extra={
                "venue": self.venue.info.name,
                "symbol": self.symbol,
                "timeframe": self.timeframe,
                "start_ms": start_ms,
                "end_ms": end_ms,
            },
        )

    # -- both ----------------------------------------------------------------------------------

    async def _read(self, start_ms: int, end_ms: int) -> list[Candle]:
        """The venue's candles opening in [start_ms, end_ms), page by page."""
        found: list[Candle] = []
        while start_ms < end_ms:
            count = min((end_ms - start_ms) // self.width, MAX_LIMIT)
            page = await self.venue.candles(self.symbol, self.timeframe, start_ms, count)
            found += sorted(
                (c for c in page if start_ms <= c.open_time_ms < end_ms),
                key=lambda c: c.open_time_ms,
            )
            start_ms += count * self.width
        return found

    def _publish(self, candle: Candle) -> None:
        close_ms = candle.open_time_ms + self.width
        emitted_ms = self.clock.now_ms()
        late = emitted_ms - close_ms > self.timing.late_after_ms and not self.final_at_close
        if late:
            log.warning(
                "closed candle published late",
                extra={
                    "venue": self.venue.info.name,
                    "symbol": self.symbol,
                    "timeframe": self.timeframe,
                    "open_time_ms": candle.open_time_ms,
                    "late_by_ms": emitted_ms - close_ms,
                },
            )
        self.fanout.publish(ClosedCandle(candle, close_ms, emitted_ms, late=late))


class CandleStreams:
    """The candle loops of the service, by (venue, symbol, timeframe)."""

    def __init__(
        self,
        cache: CandleCache,
        *,
        timing: Timing | None = None,
        clock_of: Callable[[Venue], Clock] = VenueClock,
    ) -> None:
        self.cache = cache
        self.timing = timing or Timing()
        self.clock_of = clock_of
        self.loops: dict[Key, CandleLoop] = {}

    async def stream(
        self, venue: Venue, symbol: str, timeframe: str, width_ms: int, after_ms: int | None
    ) -> AsyncIterator[ClosedCandle]:
        """Closed candles: from history after `after_ms` (if given), then as they close."""
        key = (venue.info.name, symbol, timeframe)
        loop = self.loops.get(key)
        if loop is not None and loop.task.done():  # stopped by a permanent error
            loop = None
        clock = loop.clock if loop is not None else self.clock_of(venue)
        if after_ms is not None:
            cursor = loop.cursor if loop is not None else clock.now_ms() // width_ms * width_ms
            first_open = after_ms // width_ms * width_ms + width_ms
            if (cursor - first_open) // width_ms > MAX_CATCH_UP:
                raise InvalidArgument(
                    [
                        FieldViolation(
                            "after",
                            f"reaches more than {MAX_CATCH_UP} candles back; read older "
                            "ones with GetCandles",
                        )
                    ]
                )
        if loop is None:
            loop = CandleLoop(
                venue, symbol, timeframe, width_ms=width_ms, clock=clock, timing=self.timing
            )
            self.loops[key] = loop
        try:
            # Registered and the cursor read with no await between: the history part ends
            # exactly where the live part starts.
            async with loop.fanout.subscribed() as items:
                cursor = loop.cursor
                if after_ms is not None:
                    async for candle in self._history(venue, loop, after_ms, cursor):
                        yield candle
                async for item in items:
                    if isinstance(item, EdgeQuantError):
                        raise item
                    if after_ms is None or item.candle.open_time_ms > after_ms:
                        yield item
        finally:
            if loop.fanout.subscriber_count == 0 and self.loops.get(key) is loop:
                del self.loops[key]
                loop.task.cancel()

    async def _history(
        self, venue: Venue, loop: CandleLoop, after_ms: int, end_ms: int
    ) -> AsyncIterator[ClosedCandle]:
        start = after_ms + 1  # the cache starts at the first candle opening at or after it
        emitted_ms = loop.clock.now_ms()
        while start < end_ms:
            page = await self.cache.candles(
                venue,
                symbol=loop.symbol,
                timeframe=loop.timeframe,
                start_ms=start,
                end_ms=end_ms,
                limit=MAX_LIMIT,
            )
            for candle in page:
                close_ms = candle.open_time_ms + loop.width
                yield ClosedCandle(candle, close_ms, emitted_ms, catch_up=True)
            start = -(-start // loop.width) * loop.width + MAX_LIMIT * loop.width

    async def close(self) -> None:
        for loop in list(self.loops.values()):
            loop.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop.task
        self.loops.clear()
