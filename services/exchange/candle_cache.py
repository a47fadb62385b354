"""GetCandles through the exchange's database: a span fetched once is served from there.

A request becomes an explicit window [start, end) of whole candles: with a start time,
`limit` candles from it; without, the `limit` candles that closed last. Only closed
candles are cached (the forming one still changes), so a window inside a span fetched
before never goes to the venue again. The span recorded as covered runs from the first
candle the venue returned through its last: a span it did not return is never cached as
empty (asked again next time), so a window reaching past the venue's last candle goes
to the venue until the venue has it. A venue that keeps its candles in memory (the paper
venue: its history is shifted onto the wall clock at every start, so a stored copy would
go stale) says so with `candles_cached = False` and is asked every time.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common import timeframes
from services.exchange.markets import Candle
from services.exchange.storage import repository
from services.exchange.storage.writer import Writer
from services.exchange.venue import Venue

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


class CandleCache:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], writer: Writer) -> None:
        self._sessions = sessions
        self._writer = writer

    async def candles(
        self,
        venue: Venue,
        *,
        symbol: str,
        timeframe: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Candle]:
        width = timeframes.milliseconds(timeframe)
        closed_end = venue.clock_ms() // width * width
        end = min(end_ms if end_ms is not None else closed_end, closed_end)
        if start_ms is None:
            start = end - limit * width
        else:
            start = -(-start_ms // width) * width  # the first candle opening at or after it
            end = min(end, start + limit * width)
        if end <= start:
            return []
        if not getattr(venue, "candles_cached", True):
            fetched = await venue.candles(symbol, timeframe, start, limit)
            return [c for c in fetched if start <= c.open_time_ms < end]
        name = venue.info.name
        async with self._sessions() as session:
            key = {"venue": name, "symbol": symbol, "timeframe": timeframe}
            if await repository.covered(session, **key, start_ms=start, end_ms=end):
                return await repository.cached_candles(session, **key, start_ms=start, end_ms=end)
        fetched = await venue.candles(symbol, timeframe, start, limit)
        closed = sorted(
            (c for c in fetched if start <= c.open_time_ms < end), key=lambda c: c.open_time_ms
        )
        if closed:
            # Covered: from the first candle the venue returned through the last one. What
            # lies before or after (not returned: not listed yet, a venue lagging, a page
            # cut short) is asked again next time, never cached as empty.
            span = (closed[0].open_time_ms, closed[-1].open_time_ms + width)
            await self._writer.run(
                lambda connection: repository.store_candles(
                    connection, **key, candles=closed, span=span
                )
            )
        return closed
