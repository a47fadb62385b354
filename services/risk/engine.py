"""The risk engine: the book, the limits and the trading state behind one interface.

CheckOrder calls `check` (synchronous, no I/O). It is idempotent per order id: the
exchange retries a check that failed UNAVAILABLE, and a repeat gets the first answer
without counting the order again in the rate windows, the reservations or the events.
The order feed calls `apply_order`; an order under check is never counted as one of
the open orders it is checked against. The control path (limits, trading state)
persists first and then swaps the in-memory value, so what is served is always what is
stored. The feeds call `after_equity_change`, which halts trading by itself when the
daily loss or drawdown limit is breached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from common.errors import AlreadyExists
from services.risk.book import ZERO, OpenOrder, RiskBook
from services.risk.events import EventHub, RiskEvent, RiskEventType
from services.risk.limits import Limits
from services.risk.rules import (
    RISK_DAILY_LOSS,
    RISK_MAX_DRAWDOWN,
    OrderIntent,
    VarEstimate,
    Violation,
    check_order,
)
from services.risk.storage.repository import RiskRepository
from services.risk.trading_state import (
    RISK_ACTOR,
    TradingState,
    TradingStateChange,
    initial_state,
)

log = logging.getLogger("edgequant.risk")

_Value = TypeVar("_Value")

# How many recent order ids the engine remembers (decisions, and orders the exchange
# reported finished): a retry comes within the exchange's check deadline (a fraction of a
# second), so this many covers thousands of checks a second; ~300 bytes each.
RECENT_ORDERS_KEPT = 2048


@dataclass(frozen=True)
class Decision:
    """The answer given to an order id, and a fingerprint of the order it was given to."""

    fingerprint: int
    violations: tuple[Violation, ...]


def _remember(recent: OrderedDict[str, _Value], key: str, value: _Value) -> None:
    recent[key] = value
    if len(recent) > RECENT_ORDERS_KEPT:
        recent.popitem(last=False)


@dataclass(frozen=True)
class SymbolExposure:
    symbol: str
    quantity: Decimal
    mark_price: Decimal | None
    notional: Decimal
    open_order_notional: Decimal


@dataclass(frozen=True)
class Exposure:
    gross: Decimal
    net: Decimal
    equity: Decimal
    # None when equity is not positive.
    leverage: Decimal | None
    symbols: tuple[SymbolExposure, ...]


async def load_trading_state(repository: RiskRepository, now: datetime) -> TradingStateChange:
    """The stored trading state; on the first start, the initial one, stored at `now` so
    that its update_time says when the install began trading, restart after restart."""
    stored = await repository.latest_trading_state()
    if stored is not None:
        return stored
    state = initial_state(now)
    await repository.append_trading_state(state)
    return state


class RiskEngine:
    def __init__(
        self,
        *,
        book: RiskBook,
        limits: Limits,
        trading_state: TradingStateChange,
        repository: RiskRepository,
        events: EventHub,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self.limits = limits
        self.trading_state = trading_state
        self.repository = repository
        self.events = events
        self.clock = clock
        self.var_estimate: VarEstimate | None = None
        # Breaches already acted on: a breach halts once, so an operator who resumes
        # (or moves to REDUCING to get out) is not overruled at the next price tick.
        self._breaches: set[str] = set()
        self._control = asyncio.Lock()
        self._decisions: OrderedDict[str, Decision] = OrderedDict()
        # Orders the exchange reported as unable to fill any more (filled, cancelled,
        # rejected): a check that arrives after that (the exchange gave up waiting for
        # it) must not reserve exposure for an order that will never report again.
        self._finished: OrderedDict[str, None] = OrderedDict()

    def utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- the hot path ------------------------------------------------------------------

    def check(self, order: OrderIntent) -> list[Violation]:
        """Every rule the order fails; approval records the submission in the rate windows
        and reserves the order's exposure, a denial is published. A repeat of an order id
        answers as the first time and changes nothing; the same id with another order is
        ALREADY_EXISTS."""
        if order.order_id:
            decided = self._decisions.get(order.order_id)
            if decided is not None:
                if decided.fingerprint != hash(order):
                    raise AlreadyExists(
                        f"order_id {order.order_id!r} was checked already, with other "
                        "parameters: each order needs its own id",
                        reason="ORDER_ID_REUSED",
                    )
                return list(decided.violations)
            # The exchange reports an order (PENDING_NEW) before it asks for the check,
            # and the report may arrive first: that is this order, not another open one.
            self.book.open_orders.pop(order.order_id, None)
        violations = self._decide(order)
        if order.order_id:
            _remember(self._decisions, order.order_id, Decision(hash(order), tuple(violations)))
        return violations

    def _decide(self, order: OrderIntent) -> list[Violation]:
        now = self.clock()
        violations = check_order(
            order,
            self.book,
            self.limits,
            state=self.trading_state.state,
            now=now,
            var_estimate=self.var_estimate,
        )
        if violations:
            self.events.publish(
                RiskEvent(
                    type=RiskEventType.ORDER_DENIED,
                    time=datetime.fromtimestamp(now, UTC),
                    message=f"{order.side.name} {order.quantity} {order.symbol} denied",
                    violations=tuple(violations),
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                )
            )
        else:
            self.book.record_submission(now)
            if order.order_id and order.order_id not in self._finished:
                self.book.reserve(
                    OpenOrder(order.order_id, order.symbol, order.side, order.quantity, order.price)
                )
        return violations

    def apply_order(self, order_id: str, rest: OpenOrder | None) -> None:
        """An order as the exchange reports it: `rest` is what may still fill, None once
        nothing can (filled, cancelled, rejected). The reservation goes with the report."""
        if rest is None:
            self.book.open_orders.pop(order_id, None)
            _remember(self._finished, order_id, None)
            return
        decided = self._decisions.get(order_id)
        if (decided is not None and decided.violations) or order_id in self._finished:
            # A late report of an order that was denied or has finished: it never fills.
            return
        self.book.open_orders[order_id] = rest

    # --- the control path --------------------------------------------------------------

    async def set_trading_state(
        self, state: TradingState, reason: str, updated_by: str
    ) -> TradingStateChange:
        async with self._control:
            change = TradingStateChange(state, reason, updated_by, self.utc_now())
            await self.repository.append_trading_state(change)
            self.trading_state = change
        log.warning(
            "trading state %s", state.name, extra={"reason": reason, "updated_by": updated_by}
        )
        self.events.publish(
            RiskEvent(
                type=RiskEventType.TRADING_STATE_CHANGED,
                time=change.update_time,
                message=f"trading state set to {state.name} by {updated_by}: {reason}",
                trading_state=change,
            )
        )
        return change

    async def update_limits(self, limits: Limits, updated_by: str) -> Limits:
        async with self._control:
            when = self.utc_now()
            await self.repository.save_limits(limits, updated_by, when)
            self.limits = limits
        self.events.publish(
            RiskEvent(
                type=RiskEventType.LIMITS_UPDATED,
                time=when,
                message=f"limits updated by {updated_by}",
            )
        )
        await self.after_equity_change()
        return limits

    async def after_equity_change(self) -> None:
        """Halts trading (once per breach) when the daily loss or drawdown limit is reached.

        Only a fresh book moves the equity peak and the day's opening equity: half a
        snapshot (cash without marks) must not become either."""
        if not self.book.fresh:
            return
        self.book.mark_equity(self.utc_now())
        breaches = self._breached_limits()
        fresh = [violation for violation in breaches if violation.reason not in self._breaches]
        self._breaches = {violation.reason for violation in breaches}
        if not fresh:
            return
        message = "; ".join(violation.message for violation in fresh)
        self.events.publish(
            RiskEvent(
                type=RiskEventType.LIMIT_BREACHED,
                time=self.utc_now(),
                message=message,
                violations=tuple(fresh),
            )
        )
        if self.trading_state.state is not TradingState.HALTED:
            await self.set_trading_state(TradingState.HALTED, message, RISK_ACTOR)

    def _breached_limits(self) -> list[Violation]:
        breaches = []
        limits, book = self.limits, self.book
        loss = book.daily_loss()
        if limits.daily_loss_limit is not None and loss >= limits.daily_loss_limit:
            breaches.append(
                Violation(
                    RISK_DAILY_LOSS,
                    f"daily loss {loss} reached the limit {limits.daily_loss_limit}",
                    str(limits.daily_loss_limit),
                    str(loss),
                )
            )
        drawdown = book.drawdown()
        if limits.max_drawdown is not None and drawdown >= limits.max_drawdown:
            breaches.append(
                Violation(
                    RISK_MAX_DRAWDOWN,
                    f"drawdown {drawdown:.4f} from the equity peak {book.equity_peak} "
                    f"reached the limit {limits.max_drawdown}",
                    str(limits.max_drawdown),
                    str(drawdown),
                )
            )
        return breaches

    # --- exposure ------------------------------------------------------------------------

    def exposure(self) -> Exposure:
        book = self.book
        symbols = sorted(
            {s for s, p in book.positions.items() if p.quantity}
            | {o.symbol for o in book.open_orders.values()}
        )
        rows = []
        for symbol in symbols:
            quantity = book.position(symbol)
            mark = book.mark(symbol)
            rows.append(
                SymbolExposure(
                    symbol=symbol,
                    quantity=quantity,
                    mark_price=mark,
                    notional=quantity * (mark or ZERO),
                    open_order_notional=sum(
                        (
                            book.open_order_notional(order)
                            for order in book.open_orders.values()
                            if order.symbol == symbol
                        ),
                        ZERO,
                    ),
                )
            )
        gross = sum((abs(row.notional) for row in rows), ZERO)
        equity = book.equity
        return Exposure(
            gross=gross,
            net=sum((row.notional for row in rows), ZERO),
            equity=equity,
            leverage=gross / equity if equity > 0 else None,
            symbols=tuple(rows),
        )
