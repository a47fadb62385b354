"""Marks: the prices positions are valued at, from the exchange's tickers.

`MarkFeed` follows ExchangeService.StreamTickers for the venue of every account,
reconnecting with backoff; `MarkBook` keeps the latest mark per (venue, symbol). A
ticker's mark is its bid/ask mid, or its last price when the book is one-sided.
Until a venue sends one, a position is marked at its last fill price.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

import grpc

from common.backoff import Backoff
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc

log = logging.getLogger("edgequant.portfolio.marks")


class MarkBook:
    def __init__(self) -> None:
        self._marks: dict[tuple[str, str], Decimal] = {}
        self._versions: dict[str, int] = {}

    def get(self, venue: str, symbol: str) -> Decimal | None:
        return self._marks.get((venue, symbol))

    def set(self, venue: str, symbol: str, price: Decimal) -> None:
        key = (venue, symbol)
        if self._marks.get(key) != price:
            self._marks[key] = price
            self._versions[venue] = self._versions.get(venue, 0) + 1

    def version(self, venue: str) -> int:
        """Moves whenever a mark of `venue` changes: valuations stay valid until it does."""
        return self._versions.get(venue, 0)


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


class MarkFeed:
    """Follows the tickers of each venue `venues()` names, one stream per venue."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        marks: MarkBook,
        venues: Callable[[], set[str]],
        backoff: Callable[[], Backoff],
        poll_seconds: float = 1.0,
    ) -> None:
        self._stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        self._marks = marks
        self._venues = venues
        self._backoff = backoff
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
        backoff = self._backoff()
        while True:
            try:
                stream = self._stub.StreamTickers(exchange_pb2.StreamTickersRequest(venue=venue))
                async for response in stream:
                    backoff.reset()
                    mark = mark_of(response.ticker)
                    if mark is not None:
                        self._marks.set(venue, response.ticker.symbol, mark)
            except grpc.aio.AioRpcError as error:
                log.info("tickers stream lost", extra={"venue": venue, "code": error.code().name})
            await asyncio.sleep(backoff.next())
