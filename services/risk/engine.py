"""The risk engine: the book, the limits and the trading state behind one interface.

CheckOrder calls `check` (synchronous, no I/O). The control path (limits, trading
state) persists first and then swaps the in-memory value, so what is served is always
what is stored. The feeds call `after_equity_change`, which halts trading by itself
when the daily loss or drawdown limit is breached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

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
from services.risk.trading_state import RISK_ACTOR, TradingState, TradingStateChange

log = logging.getLogger("edgequant.risk")


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

    def utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- the hot path ------------------------------------------------------------------

    def check(self, order: OrderIntent) -> list[Violation]:
        """Every rule the order fails; approval records the submission in the rate windows."""
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
            if order.order_id:
                self.book.reserve(
                    OpenOrder(order.order_id, order.symbol, order.side, order.quantity, order.price)
                )
        return violations

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
