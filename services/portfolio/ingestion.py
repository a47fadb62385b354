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

from common.backoff import Backoff
from common.validation import Violations
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.portfolio.accounting import ZERO, Side, Trade
from services.portfolio.ledger import Ledger
from services.portfolio.settings import IngestionSettings

log = logging.getLogger("edgequant.portfolio.ingestion")

_SIDES = {common_pb2.SIDE_BUY: Side.BUY, common_pb2.SIDE_SELL: Side.SELL}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LIQUIDITY = {common_pb2.LIQUIDITY_MAKER: "maker", common_pb2.LIQUIDITY_TAKER: "taker"}


class _EndOfStream:
    pass


_END = _EndOfStream()
# What the reader queues: one message's executions, the end of the stream, or its error.
_Item = list[common_pb2.Execution] | _EndOfStream | grpc.aio.AioRpcError


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

    async def run(self) -> None:
        """Consumes until cancelled, reconnecting with backoff."""
        backoff = Backoff(
            self._settings.backoff_initial_seconds, self._settings.backoff_max_seconds
        )
        while True:
            try:
                await self._consume(backoff)
                log.info("executions stream ended; reconnecting")
            except grpc.aio.AioRpcError as error:
                log.info("executions stream lost", extra={"code": error.code().name})
            except Exception:
                # A batch that failed to commit (database locked, disk full) changed
                # nothing: start over from the stored cursor rather than stop ingesting.
                log.exception("applying executions failed; retrying from the cursor")
            await asyncio.sleep(backoff.next())

    async def _open_venue_accounts(self) -> None:
        """One account per venue the exchange has, before any fill (see Ledger.open_accounts)."""
        try:
            response = await self._stub.ListVenues(
                exchange_pb2.ListVenuesRequest(), timeout=self._settings.rpc_timeout_seconds
            )
        except grpc.aio.AioRpcError as error:
            log.info(
                "venues not listed; accounts open on first fill", extra={"code": error.code().name}
            )
            return
        opened = await self._ledger.open_accounts(venue.name for venue in response.venues)
        if opened:
            log.info("accounts opened", extra={"accounts": opened})

    async def _consume(self, backoff: Backoff) -> None:
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
                    backoff.reset()
                if isinstance(end, grpc.aio.AioRpcError):
                    raise end
                if end is _END:
                    return
        finally:
            call.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _apply(self, executions: list[common_pb2.Execution]) -> None:
        cursor = self._ledger.cursor or 0
        trades = []
        for execution in executions:
            if execution.sequence <= cursor:
                continue  # replayed by the exchange: applied already
            cursor = execution.sequence
            trade = trade_from_execution(execution)
            if trade is None:
                log.error(
                    "unusable execution skipped",
                    extra={"sequence": execution.sequence, "trade_id": execution.trade_id},
                )
                continue
            trades.append(trade)
        if cursor == (self._ledger.cursor or 0):
            return
        await self._ledger.apply(trades, cursor=cursor, duplicates_expected=False)


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
