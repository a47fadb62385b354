"""The marks feed, a client of the exchange: ExchangeService.StreamTickers of the venue
of every account, reconnecting with backoff, into the MarkBook. A ticker's mark is its
bid/ask mid, or its last price when the book is one-sided.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

import grpc

from common.reconnect import DEFAULT_INITIAL_SECONDS, DEFAULT_MAX_SECONDS, Reconnect
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.portfolio.marks import MarkBook

log = logging.getLogger("edgequant.portfolio.marks")


def mark_of(ticker: exchange_pb2.Ticker) -> Decimal | None:
    """The mid of bid and ask, else the last price; None if the ticker has neither."""
    try:
        bid = Decimal(ticker.bid) if ticker.bid else None
        ask = Decimal(ticker.ask) if ticker.ask else None
        if bid and ask:
            return (bid + ask) / 2
        return Decimal(ticker.last) if ticker.last else None
    except InvalidOperation:
        return None


# Marks twice a second: what a trader reads of unrealised PnL, and at most 2 ticker
# messages a second a symbol, not 10 (each costs more to receive than the mark is worth).
MARKS_INTERVAL_MS = 500


class MarkFeed:
    """Follows the tickers of each venue `venues()` names, one stream per venue."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        marks: MarkBook,
        venues: Callable[[], set[str]],
        backoff_seconds: tuple[float, float] = (DEFAULT_INITIAL_SECONDS, DEFAULT_MAX_SECONDS),
        poll_seconds: float = 1.0,
    ) -> None:
        self._stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        self._marks = marks
        self._venues = venues
        # The first and the longest wait before a lost tickers stream is asked again.
        self._backoff_seconds = backoff_seconds
        self._poll_seconds = poll_seconds
        self._followed: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        try:
            while True:
                for venue in self._venues() - self._followed.keys():
                    self._followed[venue] = asyncio.create_task(self._follow(venue))
                await asyncio.sleep(self._poll_seconds)
        finally:
            for task in self._followed.values():
                task.cancel()
            await asyncio.gather(*self._followed.values(), return_exceptions=True)

    async def _follow(self, venue: str) -> None:
        initial, longest = self._backoff_seconds
        reconnect = Reconnect(f"tickers of {venue}", initial_seconds=initial, max_seconds=longest)

        async def attempt() -> None:
            stream = self._stub.StreamTickers(
                exchange_pb2.StreamTickersRequest(venue=venue, min_interval_ms=MARKS_INTERVAL_MS)
            )
            async for response in stream:
                reconnect.connected()
                mark = mark_of(response.ticker)
                if mark is not None:
                    self._marks.set(venue, response.ticker.symbol, mark)

        await reconnect.forever(attempt)
