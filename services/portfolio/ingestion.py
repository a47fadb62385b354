"""Ingestion: ExchangeService.StreamExecutions, applied exactly once.

The consumer asks for the executions after the ledger's cursor, several per message
(`max_batch`: one message per execution cost more than applying it), applies them in
batches and moves the cursor in the same transaction as the fills (Ledger.apply):
a crash of either side between two commits replays at most the uncommitted batch,
which the cursor (and the unique venue + trade id) then skips. A reader task fills a
bounded queue while the previous batch commits, so batches grow with the load; when
the stream breaks the consumer reconnects with backoff from the stored cursor.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import grpc

from common.reconnect import Reconnect
from common.validation import Violations
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.portfolio.accounting import ZERO, Trade, TradeSide
from services.portfolio.accounts import (
    Account,
    AccountKind,
    Opening,
    OpeningPosition,
    holdings_text,
)
from services.portfolio.ledger import Ledger
from services.portfolio.settings import IngestionSettings
from services.portfolio.ticker_feed import mark_of

log = logging.getLogger("edgequant.portfolio.ingestion")

_SIDES = {common_pb2.SIDE_BUY: TradeSide.BUY, common_pb2.SIDE_SELL: TradeSide.SELL}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LIQUIDITY = {common_pb2.LIQUIDITY_MAKER: "maker", common_pb2.LIQUIDITY_TAKER: "taker"}
_KINDS = {
    exchange_pb2.VENUE_KIND_PAPER: AccountKind.PAPER,
    exchange_pb2.VENUE_KIND_SANDBOX: AccountKind.SANDBOX,
    exchange_pb2.VENUE_KIND_LIVE: AccountKind.LIVE,
}


class _EndOfStream:
    pass


_END = _EndOfStream()
# What the reader queues: one message's executions, the end of the stream, or its error.
_Item = list[common_pb2.Execution] | _EndOfStream | grpc.aio.AioRpcError


def _check_unchanged(account: Account, venue: exchange_pb2.Venue) -> None:
    """A paper venue whose starting balances changed since its account opened: the
    ledger keeps its opening (its history stands on it) and says how to start over."""
    if account.kind is not AccountKind.PAPER or not account.opening_holdings:
        return
    starting = holdings_text(
        {b.asset: Decimal(b.total) for b in venue.starting_balances if Decimal(b.total or "0")}
    )
    if starting != account.opening_holdings:
        log.warning(
            "the paper venue's starting balances differ from those its account opened"
            " with; the account keeps its opening: start both databases afresh to apply them",
            extra={"venue": venue.name, "opened": account.opening_holdings, "now": starting},
        )


def trade_from_execution(execution: common_pb2.Execution) -> Trade | None:
    """The ledger's fill for an execution; None if the exchange sent something unusable."""
    try:
        return _well_formed(execution)
    except (InvalidOperation, KeyError, ValueError):
        return _checked(execution)


def _well_formed(execution: common_pb2.Execution) -> Trade:
    """The fast path, for what the exchange normally sends; raises on anything else."""
    quantity = Decimal(execution.quantity)
    price = Decimal(execution.price)
    fee = Decimal(execution.fee) if execution.fee else ZERO
    stamp = execution.time
    if not (
        quantity.is_finite()
        and quantity > 0
        and price.is_finite()
        and price > 0
        and fee.is_finite()
        and fee >= 0
        and execution.venue
        and execution.trade_id
        and "/" in execution.symbol
    ):
        raise ValueError("not well formed")
    return Trade(
        venue=execution.venue,
        trade_id=execution.trade_id,
        symbol=execution.symbol,
        side=_SIDES[execution.side],
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=execution.fee_currency,
        # Positional timedelta arguments: half the cost of keywords, on every execution.
        time=_EPOCH + timedelta(0, stamp.seconds, stamp.nanos // 1000),
        order_id=execution.order_id,
        client_order_id=execution.client_order_id,
        liquidity=_LIQUIDITY.get(execution.liquidity, ""),
        sequence=execution.sequence,
    )


def _checked(execution: common_pb2.Execution) -> Trade | None:
    """The slow path: every field checked, as for a client's request."""
    checks = Violations()
    quantity = checks.decimal("quantity", execution.quantity, positive=True)
    price = checks.decimal("price", execution.price, positive=True)
    fee = checks.decimal("fee", execution.fee or "0", non_negative=True)
    side = _SIDES.get(execution.side)
    checks.require(side is not None, "side", "must be BUY or SELL")
    checks.require(bool(execution.venue and execution.trade_id), "trade_id", "is required")
    checks.require("/" in execution.symbol, "symbol", "must be a unified symbol")
    if checks or quantity is None or price is None or fee is None or side is None:
        return None
    return Trade(
        venue=execution.venue,
        trade_id=execution.trade_id,
        symbol=execution.symbol,
        side=side,
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=execution.fee_currency,
        time=execution.time.ToDatetime(tzinfo=UTC),
        order_id=execution.order_id,
        client_order_id=execution.client_order_id,
        liquidity=_LIQUIDITY.get(execution.liquidity, ""),
        sequence=execution.sequence,
    )


class ExecutionConsumer:
    def __init__(
        self, channel: grpc.aio.Channel, ledger: Ledger, settings: IngestionSettings
    ) -> None:
        self._stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        self._ledger = ledger
        self._settings = settings
        # Market-data-only venues, skipped (and logged once).
        self._read_only: set[str] = set()

    async def run(self) -> None:
        """Consumes until cancelled, reconnecting with backoff."""
        reconnect = Reconnect(
            "exchange executions",
            initial_seconds=self._settings.backoff_initial_seconds,
            max_seconds=self._settings.backoff_max_seconds,
            # A batch that failed to commit (database locked, disk full) changed nothing:
            # start over from the stored cursor rather than stop ingesting.
            retried=(Exception,),
        )

        async def attempt() -> None:
            try:
                await self._consume(reconnect)
            except VenueNotOpen as error:
                log.warning(
                    "executions wait for their account to open", extra={"venue": error.venue}
                )
                raise
            except (grpc.aio.AioRpcError, ConnectionError, OSError):
                raise  # the peer: Reconnect says so
            except Exception:
                log.exception("applying executions failed; retrying from the cursor")
                raise

        await reconnect.forever(attempt)

    async def _open_venue_accounts(self) -> None:
        """Opens an account for each venue the exchange has and the ledger has not, from
        what the venue holds (see accounts.py). Without ListVenues nothing is consumed:
        a fill is never booked into an account that did not open from its venue."""
        response = await self._stub.ListVenues(
            exchange_pb2.ListVenuesRequest(), timeout=self._settings.rpc_timeout_seconds
        )
        for venue in response.venues:
            book = self._ledger.book(venue.name)
            if venue.read_only and book is None:
                # Market data only (`trading = false`): no holdings to read, no fills.
                if venue.name not in self._read_only:
                    self._read_only.add(venue.name)
                    log.info("market-data-only venue: no account", extra={"venue": venue.name})
                continue
            if book is not None:
                _check_unchanged(book.account, venue)
                continue
            try:
                opening = await self._opening(venue)
            except grpc.aio.AioRpcError as error:
                # Its fills wait (see _apply); the other venues' fills go on.
                log.warning(
                    "account not opened: the venue's holdings could not be read",
                    extra={"venue": venue.name, "code": error.code().name},
                )
                continue
            if await self._ledger.open_account(opening):
                log.info(
                    "account opened",
                    extra={
                        "account": venue.name,
                        "kind": opening.kind.value,
                        "holdings": opening.holdings_text,
                        "after_sequence": opening.sequence,
                    },
                )

    async def _opening(self, venue: exchange_pb2.Venue) -> Opening:
        """What `venue` holds now: paper its starting balances (no execution yet), a ccxt
        venue GetBalances with the sequence they include; other assets than the quote
        currency priced at the venue's ticker."""
        kind = _KINDS.get(venue.kind, AccountKind.LIVE)  # unknown: never taken for paper
        if kind is AccountKind.PAPER:
            balances, sequence = list(venue.starting_balances), 0
        else:
            response = await self._stub.GetBalances(
                exchange_pb2.GetBalancesRequest(venue=venue.name),
                timeout=self._settings.rpc_timeout_seconds,
            )
            balances, sequence = list(response.balances), response.as_of_sequence
        holdings = {b.asset: Decimal(b.total) for b in balances if b.total and Decimal(b.total)}
        positions = []
        for asset, quantity in sorted(holdings.items()):
            if asset == self._ledger.quote_currency:
                continue
            symbol = f"{asset}/{self._ledger.quote_currency}"
            mark = await self._mark(venue.name, symbol)
            if mark is None:
                # Kept as a balance, unvalued (as a BNB fee balance): no market prices it.
                log.info("holding without a market", extra={"venue": venue.name, "asset": asset})
                continue
            positions.append(OpeningPosition(symbol, quantity, mark))
        return Opening(venue.name, kind, holdings, sequence, positions)

    async def _mark(self, venue: str, symbol: str) -> Decimal | None:
        """The ticker's mark of `symbol` on `venue`; None if the venue has no such market.
        Any other error is raised: the opening is tried again on reconnect."""
        try:
            response = await self._stub.GetTicker(
                exchange_pb2.GetTickerRequest(venue=venue, symbol=symbol),
                timeout=self._settings.rpc_timeout_seconds,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise
        return mark_of(response.ticker)

    async def _consume(self, reconnect: Reconnect) -> None:
        await self._open_venue_accounts()
        request = exchange_pb2.StreamExecutionsRequest(
            after_seq=self._ledger.cursor or 0, max_batch=self._settings.max_batch
        )
        call = self._stub.StreamExecutions(request)
        # Two messages read ahead while a batch commits: 2 * max_batch executions at most
        # (the exchange sends no more than asked per message).
        queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=2)
        reader = asyncio.create_task(_read(call, queue))
        batches = ExecutionBatches(
            queue, self._settings.max_batch, self._settings.batch_linger_seconds
        )
        try:
            while True:
                batch, end = await batches.next()
                if batch:
                    await self._apply(batch)
                    reconnect.connected()
                if isinstance(end, grpc.aio.AioRpcError):
                    raise end
                if end is _END:
                    return
        finally:
            call.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _apply(self, executions: list[common_pb2.Execution]) -> None:
        """Applies the batch in order up to the first execution of a venue whose account
        is not open (then raises VenueNotOpen: the consumer reconnects, which opens it)."""
        cursor = self._ledger.cursor or 0
        trades = []
        unopened: str | None = None
        for execution in executions:
            if execution.sequence <= cursor:
                continue  # replayed by the exchange: applied already
            book = self._ledger.book(execution.venue)
            if book is None and execution.venue:
                unopened = execution.venue
                break
            cursor = execution.sequence
            if book is not None and execution.sequence <= book.account.opening_sequence:
                continue  # in the holdings the account opened with
            trade = trade_from_execution(execution)
            if trade is None:
                log.error(
                    "unusable execution skipped",
                    extra={"sequence": execution.sequence, "trade_id": execution.trade_id},
                )
                continue
            trades.append(trade)
        if cursor != (self._ledger.cursor or 0):
            await self._ledger.apply(trades, cursor=cursor, duplicates_expected=False)
        if unopened is not None:
            raise VenueNotOpen(unopened)


class VenueNotOpen(Exception):
    """An execution of a venue whose account could not be opened yet."""

    def __init__(self, venue: str) -> None:
        super().__init__(f"no account open for venue {venue!r}")
        self.venue = venue


async def _read(
    call: grpc.aio.UnaryStreamCall[
        exchange_pb2.StreamExecutionsRequest, exchange_pb2.StreamExecutionsResponse
    ],
    queue: asyncio.Queue[_Item],
) -> None:
    try:
        async for response in call:
            executions = _executions_in(response)
            if executions:
                await queue.put(executions)
        await queue.put(_END)
    except grpc.aio.AioRpcError as error:
        await queue.put(error)


def _executions_in(
    response: exchange_pb2.StreamExecutionsResponse,
) -> list[common_pb2.Execution]:
    """A message's executions: in `executions` when batched, in `execution` from an
    exchange that predates `max_batch` (and ignores it)."""
    if response.executions:
        return list(response.executions)
    return [response.execution] if response.HasField("execution") else []


class ExecutionBatches:
    """Cuts the stream's messages into batches of at most `max_batch` executions.

    A batch is whatever is queued once the first message is there; if that is less
    than `max_batch`, it lingers once so that a busy stream makes fewer, larger
    transactions. What does not fit waits for the next batch, in order.
    """

    def __init__(self, queue: asyncio.Queue[_Item], max_batch: int, linger_seconds: float) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self._linger_seconds = linger_seconds
        self._left_over: list[common_pb2.Execution] = []

    async def next(
        self,
    ) -> tuple[list[common_pb2.Execution], _EndOfStream | grpc.aio.AioRpcError | None]:
        batch, self._left_over = self._left_over, []
        lingered = self._linger_seconds <= 0
        while len(batch) < self._max_batch:
            if not self._queue.empty():
                item = self._queue.get_nowait()
            elif not batch:
                item = await self._queue.get()
            elif lingered:
                break
            else:
                lingered = True
                await asyncio.sleep(self._linger_seconds)
                continue
            if not isinstance(item, list):
                return batch, item
            batch.extend(item)
        batch, self._left_over = batch[: self._max_batch], batch[self._max_batch :]
        return batch, None
