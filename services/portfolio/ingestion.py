"""Ingestion: ExchangeService.StreamExecutions, applied exactly once.

The consumer asks for the executions after the ledger's cursor, applies them in
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
        time=_EPOCH
        + timedelta(seconds=execution.time.seconds, microseconds=execution.time.nanos // 1000),
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
        after = self._ledger.cursor or 0
        call = self._stub.StreamExecutions(exchange_pb2.StreamExecutionsRequest(after_seq=after))
        queue: asyncio.Queue[common_pb2.Execution | _EndOfStream | grpc.aio.AioRpcError] = (
            asyncio.Queue(maxsize=self._settings.max_batch * 2)
        )
        reader = asyncio.create_task(_read(call, queue))
        try:
            while True:
                batch, end = await _next_batch(
                    queue, self._settings.max_batch, self._settings.batch_linger_seconds
                )
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
    queue: asyncio.Queue[common_pb2.Execution | _EndOfStream | grpc.aio.AioRpcError],
) -> None:
    try:
        async for response in call:
            await queue.put(response.execution)
        await queue.put(_END)
    except grpc.aio.AioRpcError as error:
        await queue.put(error)


async def _next_batch(
    queue: asyncio.Queue[common_pb2.Execution | _EndOfStream | grpc.aio.AioRpcError],
    max_batch: int,
    linger_seconds: float,
) -> tuple[list[common_pb2.Execution], _EndOfStream | grpc.aio.AioRpcError | None]:
    """Waits for one item and takes whatever else is queued, up to `max_batch`; if that
    is less, lingers once so that a busy stream makes fewer, larger transactions."""
    batch: list[common_pb2.Execution] = []
    item: common_pb2.Execution | _EndOfStream | grpc.aio.AioRpcError = await queue.get()
    lingered = linger_seconds <= 0
    while True:
        if not isinstance(item, common_pb2.Execution):
            return batch, item
        batch.append(item)
        if len(batch) >= max_batch:
            return batch, None
        if queue.empty():
            if lingered:
                return batch, None
            lingered = True
            await asyncio.sleep(linger_seconds)
            if queue.empty():
                return batch, None
        item = queue.get_nowait()
