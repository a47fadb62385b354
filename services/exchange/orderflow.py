"""An order's way through the exchange: idempotency, PENDING_NEW, risk, venue, outbox.

    validate (servicer) -> same (venue, client_order_id) seen? the same parameters answer
    as the first time, others are ALREADY_EXISTS (CLIENT_ORDER_ID_REUSED)
    -> store PENDING_NEW -> RiskService.CheckOrder (fail closed) -> venue
    -> order update + its executions in one transaction -> notify the streams

A rejection (risk, funds, post-only, the venue) is stored on the order as REJECTED with
its reasons and raised as an error with the same reason; resubmitting the same
client_order_id raises the same error again and never reaches risk or the venue twice.

An order whose outcome at the venue is unknown (no answer, an answer that proves
nothing) is never rejected and never sent again: it stays PENDING_NEW with the reason
VENUE_OUTCOME_UNKNOWN and is reconciled by client_order_id, at every order poll and at
start, until the venue's answer is certain. Past an alert window the operator is told
(an ERROR log and an order update) and the lookups slow down; they never stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from datetime import UTC, datetime

from common.errors import (
    AlreadyExists,
    DeadlineExceeded,
    EdgeQuantError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
)
from services.exchange.orders import (
    Execution,
    Order,
    OrderIntent,
    OrderStatus,
    apply_fill,
    describe,
    differing_fields,
)
from services.exchange.outbox import Outbox
from services.exchange.reasons import Reason
from services.exchange.risk_gate import RiskGate
from services.exchange.storage import repository
from services.exchange.storage.writer import Writer
from services.exchange.updates import OrderUpdates
from services.exchange.venue import Venue, VenueReport
from services.exchange.venues import Venues

log = logging.getLogger("edgequant.exchange.orders")

# The reason an order PENDING_NEW carries while the venue has not answered for certain.
OUTCOME_UNKNOWN = Reason.VENUE_OUTCOME_UNKNOWN

# How a stored rejection is raised again on an idempotent resubmission.
_REJECTIONS: dict[str, type[EdgeQuantError]] = {
    cls.code.name: cls
    for cls in (FailedPrecondition, Unavailable, PermissionDenied, ResourceExhausted, Unimplemented)
}


def _now() -> datetime:
    return datetime.now(UTC)


class OrderFlow:
    def __init__(
        self,
        *,
        sessions: repository.Sessions,
        writer: Writer,
        venues: Venues,
        risk: RiskGate,
        outbox: Outbox,
        updates: OrderUpdates,
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._venues = venues
        self._risk = risk
        self._outbox = outbox
        self._updates = updates
        # One lock per order in flight: a venue report (a resting order filled by the
        # replay) waits until the submission that created the order has stored it.
        # Weak: a lock lives as long as someone holds or waits for it.
        self._order_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        # Orders of unknown outcome past the alert window: when each was last looked up.
        self._overdue: dict[str, float] = {}

    # -- submit --------------------------------------------------------------------------

    async def submit(self, intent: OrderIntent) -> Order:
        order = _new_order(intent)
        async with self._lock(order.order_id):
            try:
                await self._writer.run(
                    lambda connection: repository.insert_order(connection, order)
                )
            except repository.ClientOrderIdTaken:
                # The (venue, client_order_id) is taken: answer as its first submission
                # did, if this asks for the same order.
                async with self._sessions() as session:
                    existing = await repository.get_order_by_client_id(
                        session, intent.venue, intent.client_order_id
                    )
                assert existing is not None
                _require_same_order(intent, existing)
                return _replay_outcome(existing)
            try:
                try:
                    await self._risk.check(order)
                finally:
                    # Published once risk has answered, not while it decides: the update
                    # would reach risk beside the check and be read first, on the order's
                    # critical path. Subscribers still see PENDING_NEW first, stored.
                    self._updates.publish(order)
                report = await self._venues.require(order.venue).submit(order)
            except DeadlineExceeded as unknown:
                # The venue may or may not hold it: it stays PENDING_NEW, never REJECTED,
                # so nobody is invited to place it again under a new id.
                await self._mark_unknown(order, unknown.message)
                unknown.metadata.setdefault("order_id", order.order_id)
                raise
            except EdgeQuantError as rejection:
                await self._reject(order, rejection)
                raise
            await self._record(order, report)
        return order

    async def reject_unplaced(self, orders: list[Order]) -> None:
        """Rejects orders a submission left PENDING_NEW when this process died.

        Only for a venue that lives in this process (paper): its state died with the
        submission and is rebuilt from the stored executions, so such an order was never
        placed. Left PENDING_NEW it would hang forever (and a limit one would be restored
        as resting, unapproved); rejected, its client_order_id answers UNAVAILABLE from
        now on, and the client submits again under a new id."""
        for order in orders:
            log.warning(
                "order left pending by a crash: rejected",
                extra={"order_id": order.order_id, "client_order_id": order.client_order_id},
            )
            await self._reject(
                order,
                Unavailable(
                    "the exchange restarted before the order reached the venue: it was not "
                    "placed. Submit again with a new client_order_id",
                    reason=Reason.EXCHANGE_RESTARTED,
                ),
            )

    async def _mark_unknown(self, order: Order, message: str) -> None:
        order.reject_reasons = [OUTCOME_UNKNOWN]
        order.reject_message = message
        order.update_time = _now()
        await self._store(order, [])

    async def mark_unknown(self, orders: list[Order]) -> None:
        """At start: orders a ccxt submission left PENDING_NEW when this process died may
        be at the venue; they are reconciled by client_order_id, never rejected."""
        for order in orders:
            if order.reject_reasons != [OUTCOME_UNKNOWN]:
                log.warning(
                    "order left pending by a restart: its outcome is unknown; reconciling",
                    extra={"order_id": order.order_id, "client_order_id": order.client_order_id},
                )
                await self._mark_unknown(
                    order,
                    "the exchange restarted while the order was being sent: its outcome is "
                    "unknown and it is being reconciled by client_order_id",
                )

    async def _reject(self, order: Order, rejection: EdgeQuantError) -> None:
        order.status = OrderStatus.REJECTED
        reasons = rejection.metadata.get("reasons") or rejection.reason
        order.reject_reasons = reasons.split(",")
        order.reject_message = rejection.message
        order.reject_code = rejection.code.name
        order.update_time = _now()
        rejection.metadata.setdefault("order_id", order.order_id)
        rejection.metadata.setdefault("client_order_id", order.client_order_id)
        await self._store(order, [])

    # -- venue reports -------------------------------------------------------------------

    async def on_report(self, report: VenueReport) -> None:
        """What a venue says happened later to an order (a resting order filled)."""
        async with self._lock(report.order_id):
            async with self._sessions() as session:
                order = await repository.get_order(session, report.order_id)
            if order is None:
                log.error("venue report for an unknown order", extra={"order_id": report.order_id})
                return
            await self._record(order, report)

    async def _record(self, order: Order, report: VenueReport) -> None:
        for fill in report.fills:
            apply_fill(order, fill)
        order.status = report.status
        order.venue_order_id = report.venue_order_id or order.venue_order_id
        if order.reject_reasons == [OUTCOME_UNKNOWN] and (
            order.venue_order_id or order.status is not OrderStatus.PENDING_NEW
        ):
            order.reject_reasons, order.reject_message = [], ""  # the venue answered
        order.update_time = _now()
        executions_to_number = report.fills
        async with self._outbox.writing:
            first = self._outbox.last_sequence
            executions = [
                Execution(
                    sequence=self._outbox.next_sequence(),
                    venue=order.venue,
                    trade_id=fill.trade_id,
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    side=order.side,
                    quantity=fill.quantity,
                    price=fill.price,
                    fee=fill.fee,
                    fee_currency=fill.fee_currency,
                    liquidity=fill.liquidity,
                    time=fill.time,
                )
                for fill in executions_to_number
            ]
            try:
                await self._write(order, executions)
            except BaseException:
                self._outbox.rewind(first)
                raise
            self._outbox.committed(executions)
        if executions:
            self._outbox.appended.notify()
        self._updates.publish(order)

    async def _store(self, order: Order, executions: list[Execution]) -> None:
        async with self._outbox.writing:
            await self._write(order, executions)
        self._updates.publish(order)

    async def _write(self, order: Order, executions: list[Execution]) -> None:
        await self._writer.run(
            lambda connection: repository.save_order_and_executions(connection, order, executions)
        )

    async def poll_open_orders(
        self, venue: Venue, *, alert_after_seconds: float, slow_poll_seconds: float
    ) -> None:
        """For venues that do not report by themselves: asks about every open order of
        `venue` at start and then each `order_poll_seconds`, and records what changed
        (fills, cancels, an unknown create settled). An order still unknown after
        `alert_after_seconds` is reported once and then looked up every
        `slow_poll_seconds`."""
        while True:
            async with self._sessions() as session:
                orders = await repository.open_orders(session, venue.info.name)
            for order in orders:
                if not self._due(order, alert_after_seconds, slow_poll_seconds):
                    continue
                try:
                    await self.reconcile(venue, order.order_id)
                except EdgeQuantError as error:
                    log.warning(
                        "order poll failed",
                        extra={"venue": venue.info.name, "reason": error.reason},
                    )
                    break  # the venue is unwell: try again next round
            await asyncio.sleep(venue.order_poll_seconds)

    def _due(self, order: Order, alert_after_seconds: float, slow_poll_seconds: float) -> bool:
        if order.reject_reasons != [OUTCOME_UNKNOWN]:
            self._overdue.pop(order.order_id, None)
            return True
        age = (_now() - order.create_time).total_seconds()
        if age < alert_after_seconds:
            return True
        now = time.monotonic()
        last = self._overdue.get(order.order_id)
        if last is None:
            log.error(
                "order outcome still unknown: the venue has not confirmed nor denied it; "
                "do not place it again, check the venue",
                extra={
                    "venue": order.venue,
                    "order_id": order.order_id,
                    "client_order_id": order.client_order_id,
                    "age_seconds": round(age),
                },
            )
            self._updates.publish(order)
        elif now - last < slow_poll_seconds:
            return False
        self._overdue[order.order_id] = now
        return True

    async def reconcile(self, venue: Venue, order_id: str) -> None:
        """Asks the venue about one open order and records what changed. Under the
        order's lock, on the stored order: a report is never applied to a stale copy."""
        async with self._lock(order_id):
            order = await self.get(order_id)
            if not order.status.is_open:
                return
            report = await venue.refresh(order)
            if report is None:
                return
            if (
                report.fills
                or report.status is not order.status
                or (report.venue_order_id and report.venue_order_id != order.venue_order_id)
            ):
                await self._record(order, report)

    # -- cancel --------------------------------------------------------------------------

    async def cancel(self, order_id: str) -> Order:
        async with self._lock(order_id):
            order = await self.get(order_id)
            if not order.status.is_open:
                raise FailedPrecondition(
                    f"order {order_id} is {order.status.value}; only open orders can be canceled",
                    reason=Reason.ORDER_NOT_OPEN,
                    metadata={"status": order.status.value},
                )
            report = await self._venues.require(order.venue).cancel(order)
            await self._record(order, report)
            return order

    async def cancel_all(self, venue: str, symbol: str = "") -> list[Order]:
        self._venues.require(venue)
        async with self._sessions() as session:
            candidates = await repository.open_orders(session, venue, symbol)
        canceled = []
        for order in candidates:
            try:
                canceled.append(await self.cancel(order.order_id))
            except FailedPrecondition:
                continue  # Filled or canceled meanwhile.
            except EdgeQuantError as error:
                # One order the venue cannot cancel must not keep the others open.
                log.error(
                    "cancel failed",
                    extra={"order_id": order.order_id, "reason": error.reason},
                )
        return canceled

    async def cancel_on_halt(self, account_id: str, why: str) -> None:
        """Trading HALTED: on one venue account (its venue's name), cancel that venue's
        open orders; globally (''), every venue's."""
        log.warning(
            "trading halted: canceling open orders",
            extra={"why": why, "account_id": account_id or "every venue"},
        )
        for venue in self._venues:
            if account_id and venue.info.name != account_id:
                continue
            try:
                await self.cancel_all(venue.info.name)
            except EdgeQuantError as error:
                log.error(
                    "cancel on halt failed",
                    extra={"venue": venue.info.name, "error": error.message},
                )

    # -- reads ---------------------------------------------------------------------------

    async def get(self, order_id: str) -> Order:
        async with self._sessions() as session:
            order = await repository.get_order(session, order_id)
        if order is None:
            raise NotFound(f"no order {order_id[:40]!r}", reason=Reason.ORDER_NOT_FOUND)
        return order

    async def get_by_client_id(self, venue: str, client_order_id: str) -> Order:
        async with self._sessions() as session:
            order = await repository.get_order_by_client_id(session, venue, client_order_id)
        if order is None:
            raise NotFound(
                f"no order {client_order_id[:40]!r} on venue {venue[:40]!r}",
                reason=Reason.ORDER_NOT_FOUND,
            )
        return order

    async def list(
        self,
        *,
        venue: str,
        symbol: str,
        statuses: list[OrderStatus],
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[Order]:
        async with self._sessions() as session:
            return await repository.list_orders(
                session, venue=venue, symbol=symbol, statuses=statuses, limit=limit, before=before
            )

    def _lock(self, order_id: str) -> asyncio.Lock:
        lock = self._order_locks.get(order_id)
        if lock is None:
            lock = self._order_locks[order_id] = asyncio.Lock()
        return lock


def _new_order(intent: OrderIntent) -> Order:
    now = _now()
    return Order(
        order_id=uuid.uuid4().hex,
        client_order_id=intent.client_order_id,
        venue=intent.venue,
        symbol=intent.symbol,
        side=intent.side,
        type=intent.type,
        time_in_force=intent.time_in_force,
        quantity=intent.quantity,
        price=intent.price,
        post_only=intent.post_only,
        reduce_only=intent.reduce_only,
        status=OrderStatus.PENDING_NEW,
        create_time=now,
        update_time=now,
    )


def _require_same_order(intent: OrderIntent, order: Order) -> None:
    """A reused client_order_id with other parameters is a conflict, never the old order:
    answering with it would tell the caller an order it did not ask for was placed."""
    differing = differing_fields(intent, order)
    if not differing:
        return
    changes = ", ".join(
        f"{name} {describe(getattr(order, name))} -> {describe(getattr(intent, name))}"
        for name in differing
    )
    raise AlreadyExists(
        f"client_order_id {order.client_order_id!r} is already used by order {order.order_id} "
        f"with other parameters ({changes}): send a new client_order_id for a new order",
        reason=Reason.CLIENT_ORDER_ID_REUSED,
        metadata={
            "client_order_id": order.client_order_id,
            "order_id": order.order_id,
            "fields": ",".join(differing),
        },
    )


def _replay_outcome(order: Order) -> Order:
    """The answer the first submission of this client_order_id got."""
    if order.status is not OrderStatus.REJECTED:
        return order
    reason = order.reject_reasons[0] if order.reject_reasons else Reason.REJECTED
    if order.reject_code == InvalidArgument.code.name:  # the venue refused the order's terms
        raise InvalidArgument((), message=order.reject_message, reason=reason)
    cls = _REJECTIONS.get(order.reject_code, FailedPrecondition)
    raise cls(
        order.reject_message,
        reason=reason,
        metadata={
            "reasons": ",".join(order.reject_reasons),
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
        },
    )
