"""A scripted ExchangeService for the portfolio's tests and benchmark.

It streams the executions it is given (resuming after `after_seq` as the real one
must), can follow new ones live, can drop a stream part-way as a crashing exchange
would, and serves tickers for marks. Serve it with `common.testing.serving`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from common.errors import FailedPrecondition, NotFound, Unavailable
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# The real exchange's cap on StreamExecutions' `max_batch`.
MAX_BATCH = 1000
# The exchange's reason for a trading RPC on a market-data-only venue, imitated here.
EXCHANGE_VENUE_READ_ONLY = "VENUE_READ_ONLY"


def execution(
    sequence: int,
    side: str = "buy",
    quantity: str = "0.01",
    price: str = "100",
    *,
    symbol: str = "BTC/USDT",
    venue: str = "paper",
    fee: str = "0",
    fee_currency: str = "USDT",
    time: datetime | None = None,
) -> common_pb2.Execution:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(time or T0 + timedelta(seconds=sequence))
    return common_pb2.Execution(
        sequence=sequence,
        venue=venue,
        trade_id=f"t-{sequence}",
        order_id=f"o-{sequence}",
        symbol=symbol,
        side=common_pb2.SIDE_BUY if side == "buy" else common_pb2.SIDE_SELL,
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=fee_currency,
        liquidity=common_pb2.LIQUIDITY_TAKER,
        time=stamp,
    )


def venue(
    name: str = "paper",
    kind: exchange_pb2.VenueKind.ValueType = exchange_pb2.VENUE_KIND_PAPER,
    starting: dict[str, str] | None = None,
    *,
    read_only: bool = False,
) -> exchange_pb2.Venue:
    """A venue as ListVenues gives it; a paper one with `starting` balances (default
    10000 USDT, the scripted exchange's paper account); `read_only` for market data
    only (`trading = false`)."""
    if starting is None:
        starting = {"USDT": "10000"} if kind == exchange_pb2.VENUE_KIND_PAPER else {}
    return exchange_pb2.Venue(
        name=name,
        kind=kind,
        available=True,
        starting_balances=[balance(asset, total) for asset, total in starting.items()],
        read_only=read_only,
    )


def balance(asset: str, total: str) -> common_pb2.Balance:
    return common_pb2.Balance(asset=asset, free=total, locked="0", total=total)


def ticker(symbol: str, bid: str, ask: str, venue: str = "paper") -> exchange_pb2.Ticker:
    return exchange_pb2.Ticker(venue=venue, symbol=symbol, bid=bid, ask=ask, last=ask)


class ScriptedExchange(exchange_pb2_grpc.ExchangeServiceServicer):
    def __init__(
        self,
        executions: Iterable[common_pb2.Execution] = (),
        *,
        follow: bool = False,
        drop_after: int | None = None,
        pause_every: int = 0,
        pause_seconds: float = 0.0,
        venues: Iterable[exchange_pb2.Venue] | None = None,
        ignores_max_batch: bool = False,
    ) -> None:
        self.executions = list(executions)
        # What ListVenues answers (default: a paper venue starting with 10000 USDT);
        # empty answers UNIMPLEMENTED, as an exchange without it.
        self.venues = list(venues) if venues is not None else [venue()]
        # What GetBalances answers per venue (a ccxt venue's holdings), and the
        # execution sequence they include.
        self.balances: dict[str, list[common_pb2.Balance]] = {}
        self.balances_as_of = 0
        # The venue of every GetBalances call, in order.
        self.balance_reads: list[str] = []
        # What ListOrders answers per venue (the orders still open there).
        self.open_orders: dict[str, list[common_pb2.Order]] = {}
        self.tickers: dict[tuple[str, str], exchange_pb2.Ticker] = {}
        # Keep streams open after the last execution, sending new ones as they come.
        self.follow = follow
        # The first stream ends with UNAVAILABLE after this many executions.
        self.drop_after = drop_after
        # Sleep `pause_seconds` every `pause_every` executions: a paced stream.
        self.pause_every = pause_every
        self.pause_seconds = pause_seconds
        # Send one execution per message whatever `max_batch` asks, as an exchange
        # from before that field does.
        self.ignores_max_batch = ignores_max_batch
        self.requested_after: list[int] = []
        self._appended = asyncio.Event()

    def append(self, *executions: common_pb2.Execution) -> None:
        self.executions.extend(executions)
        self._appended.set()

    def set_ticker(self, value: exchange_pb2.Ticker) -> None:
        self.tickers[(value.venue, value.symbol)] = value

    async def StreamExecutions(  # noqa: N802 - named by the proto
        self, request: exchange_pb2.StreamExecutionsRequest, _context: Any
    ) -> AsyncIterator[exchange_pb2.StreamExecutionsResponse]:
        self.requested_after.append(request.after_seq)
        # As the real one: `max_batch` 0 is one execution per message, in `execution`.
        batched = request.max_batch > 0 and not self.ignores_max_batch
        size = min(request.max_batch, MAX_BATCH) if batched else 1
        sent = 0
        index = 0
        while True:
            fresh = [e for e in self.executions[index:] if e.sequence > request.after_seq]
            index = len(self.executions)
            position = 0
            while position < len(fresh):
                if self.drop_after is not None and sent >= self.drop_after:
                    self.drop_after = None
                    raise Unavailable("scripted exchange dropped the stream")
                batch = fresh[position : position + self._room(sent, size)]
                position += len(batch)
                if batched:
                    yield exchange_pb2.StreamExecutionsResponse(executions=batch)
                else:
                    yield exchange_pb2.StreamExecutionsResponse(execution=batch[0])
                sent += len(batch)
                if self.pause_every and sent % self.pause_every == 0:
                    await asyncio.sleep(self.pause_seconds)
            if not self.follow:
                return
            if index == len(self.executions):
                self._appended.clear()
                await self._appended.wait()

    def _room(self, sent: int, size: int) -> int:
        """How many executions the next message holds: `size`, cut short where the
        script drops the stream or pauses, so that those come at the same execution."""
        room = size
        if self.drop_after is not None:
            room = min(room, self.drop_after - sent)
        if self.pause_every:
            room = min(room, self.pause_every - sent % self.pause_every)
        return room

    async def ListVenues(  # noqa: N802
        self, _request: exchange_pb2.ListVenuesRequest, context: Any
    ) -> exchange_pb2.ListVenuesResponse:
        if not self.venues:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no venues scripted")
        return exchange_pb2.ListVenuesResponse(venues=self.venues)

    async def GetBalances(  # noqa: N802
        self, request: exchange_pb2.GetBalancesRequest, _context: Any
    ) -> exchange_pb2.GetBalancesResponse:
        self.balance_reads.append(request.venue)
        if any(v.name == request.venue and v.read_only for v in self.venues):
            raise FailedPrecondition(
                f"venue {request.venue} is market data only", reason=EXCHANGE_VENUE_READ_ONLY
            )
        if request.venue not in self.balances:
            raise Unavailable(f"{request.venue} does not answer")
        return exchange_pb2.GetBalancesResponse(
            balances=self.balances[request.venue], as_of_sequence=self.balances_as_of
        )

    async def ListOrders(  # noqa: N802
        self, request: exchange_pb2.ListOrdersRequest, _context: Any
    ) -> exchange_pb2.ListOrdersResponse:
        orders = [
            o for o in self.open_orders.get(request.venue, []) if o.status in request.statuses
        ]
        return exchange_pb2.ListOrdersResponse(orders=orders[: request.page_size or 100])

    async def GetTicker(  # noqa: N802
        self, request: exchange_pb2.GetTickerRequest, _context: Any
    ) -> exchange_pb2.GetTickerResponse:
        found = self.tickers.get((request.venue, request.symbol))
        if found is None:
            raise NotFound(f"no ticker for {request.symbol} on {request.venue}")
        return exchange_pb2.GetTickerResponse(ticker=found)

    async def StreamTickers(  # noqa: N802
        self, request: exchange_pb2.StreamTickersRequest, _context: Any
    ) -> AsyncIterator[exchange_pb2.StreamTickersResponse]:
        for (venue, _symbol), value in list(self.tickers.items()):
            if venue == request.venue:
                yield exchange_pb2.StreamTickersResponse(ticker=value)
        await asyncio.Event().wait()  # the real one streams changes; these do not change


def total_quantity(executions: Iterable[common_pb2.Execution]) -> Decimal:
    """The signed quantity the executions add up to, for checking positions."""
    return sum(
        (
            Decimal(e.quantity) if e.side == common_pb2.SIDE_BUY else -Decimal(e.quantity)
            for e in executions
        ),
        Decimal(0),
    )
