"""The risk engine: per venue account a book, limits and a trading state, under the
global kill switch and the global default limits, behind one interface.

The accounts are the exchange's venues (the feeds add them from ListVenues; an
account's id is its venue's name, as in the portfolio). An account without limits of
its own follows the global defaults; an order meets the stricter of the global trading
state and its account's; a breach of an account's daily loss or drawdown limit halts
that account only. An order on a venue risk does not know is denied
RISK_UNKNOWN_ACCOUNT.

CheckOrder calls `check` (synchronous, no I/O), or `preview` for a dry run, which
answers the same and changes nothing. `check` is idempotent per order id: the
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from common.errors import AlreadyExists, NotFound
from common.wire import decimal_text
from services.risk.events import RiskEvent, RiskEvents, RiskEventType
from services.risk.limits import Limits
from services.risk.reasons import Reason
from services.risk.risk_book import ZERO, OpenOrder, RiskBook
from services.risk.rules import (
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
    strictest,
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
    account_id: str = ""


@dataclass(frozen=True)
class Exposure:
    gross: Decimal
    net: Decimal
    equity: Decimal
    # None when equity is not positive.
    leverage: Decimal | None
    symbols: tuple[SymbolExposure, ...]
    # '' for the sum over every account.
    account_id: str = ""


@dataclass
class AccountRisk:
    """One venue account: its book, the limits and trading state it answers to."""

    account_id: str
    # The venue's kind as ListVenues says it: "paper", "sandbox" or "live".
    kind: str
    book: RiskBook
    limits: Limits
    # Whether `limits` are the account's own (else the global defaults, followed).
    own_limits: bool
    trading_state: TradingStateChange
    var_estimate: VarEstimate | None = None
    # Breaches already acted on: a breach halts once, so an operator who resumes
    # (or moves to REDUCING to get out) is not overruled at the next price tick.
    breaches: set[str] = field(default_factory=set)


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
        limits: Limits,
        trading_state: TradingStateChange,
        repository: RiskRepository,
        events: RiskEvents,
        account_limits: dict[str, Limits] | None = None,
        account_states: dict[str, TradingStateChange] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # The global defaults and the global kill switch.
        self.limits = limits
        self.trading_state = trading_state
        self.repository = repository
        self.events = events
        self.clock = clock
        self.accounts: dict[str, AccountRisk] = {}
        # Set once the exchange's venues were listed: until then no account is known,
        # and an order is denied as stale rather than as on an unknown venue.
        self.accounts_listed = False
        # What was stored for accounts not (yet) listed: they take it when they are.
        self._account_limits = dict(account_limits or {})
        self._account_states = dict(account_states or {})
        self._control = asyncio.Lock()
        self._decisions: OrderedDict[str, Decision] = OrderedDict()
        # Orders the exchange reported as unable to fill any more (filled, cancelled,
        # rejected): a check that arrives after that (the exchange gave up waiting for
        # it) must not reserve exposure for an order that will never report again.
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._synced = asyncio.Event()

    def utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- accounts ----------------------------------------------------------------------

    def add_account(self, account_id: str, kind: str, book: RiskBook | None = None) -> AccountRisk:
        """The venue account `account_id` (idempotent: a known one keeps its book)."""
        account = self.accounts.get(account_id)
        if account is not None:
            account.kind = kind
            return account
        own = self._account_limits.get(account_id)
        account = self.accounts[account_id] = AccountRisk(
            account_id=account_id,
            kind=kind,
            book=book if book is not None else RiskBook(),
            limits=own if own is not None else self.limits,
            own_limits=own is not None,
            trading_state=self._account_states.get(account_id)
            or initial_state(self.utc_now(), account_id),
        )
        return account

    def account(self, account_id: str) -> AccountRisk:
        """A known account; NOT_FOUND (Reason.RISK_UNKNOWN_ACCOUNT) names the known ones."""
        account = self.accounts.get(account_id)
        if account is None:
            raise NotFound(
                f"risk knows no venue account {account_id[:60]!r}; known: "
                f"{', '.join(sorted(self.accounts)) or 'none yet'}",
                reason=Reason.RISK_UNKNOWN_ACCOUNT,
                metadata={"account_id": account_id[:60]},
            )
        return account

    def note_sync(self) -> None:
        """Called by the feeds after each sync: readiness comes with the first moment
        every listed account's book is fresh (or its portfolio account is not open)."""
        if self.accounts_listed and all(a.book.fresh for a in self.accounts.values()):
            self._synced.set()

    async def synced(self) -> None:
        """Returns once every listed account has synced once (then for good)."""
        await self._synced.wait()

    def unsynced_accounts(self) -> list[str]:
        return sorted(a.account_id for a in self.accounts.values() if not a.book.fresh)

    def effective_state(self, account: AccountRisk) -> TradingStateChange:
        """The stricter of the global kill switch and the account's own state."""
        if account.trading_state.state is TradingState.ACTIVE:  # the hot path's usual case
            return self.trading_state
        return strictest(self.trading_state, account.trading_state)

    # --- the hot path ------------------------------------------------------------------

    def check(self, order: OrderIntent, account_id: str) -> list[Violation]:
        """Every rule the order fails on account `account_id`; approval records the
        submission in the rate windows and reserves the order's exposure, a denial is
        published. A repeat of an order id answers as the first time and changes
        nothing; the same id with another order is ALREADY_EXISTS."""
        fingerprint = hash((account_id, order))
        if order.order_id:
            decided = self._decisions.get(order.order_id)
            if decided is not None:
                if decided.fingerprint != fingerprint:
                    raise AlreadyExists(
                        f"order_id {order.order_id!r} was checked already, with other "
                        "parameters: each order needs its own id",
                        reason=Reason.ORDER_ID_REUSED,
                    )
                return list(decided.violations)
        violations = self._decide(order, account_id)
        if order.order_id:
            _remember(self._decisions, order.order_id, Decision(fingerprint, tuple(violations)))
        return violations

    def preview(self, order: OrderIntent, account_id: str) -> list[Violation]:
        """What `check` would answer for the order now, changing nothing: no rate window,
        no reservation, no event, no decision remembered under its id (CheckOrder's
        dry_run: the web UI's pre-check before it submits)."""
        account = self.accounts.get(account_id)
        if account is None:
            return [self._unknown_account(account_id)]
        # The order itself, if already reported open, is not one of the orders it is
        # checked against (as in `_decide`); put back before anything else can run.
        reported = account.book.open_orders.pop(order.order_id, None) if order.order_id else None
        try:
            return self._evaluate(order, account, self.clock())
        finally:
            if reported is not None:
                account.book.open_orders[order.order_id] = reported

    def _evaluate(self, order: OrderIntent, account: AccountRisk, now: float) -> list[Violation]:
        state = self.effective_state(account)
        return check_order(
            order,
            account.book,
            account.limits,
            state=state.state,
            now=now,
            var_estimate=account.var_estimate,
            state_scope=""
            if state.state is TradingState.ACTIVE
            else f" on account {account.account_id}"
            if state.account_id
            else " globally",
        )

    def _decide(self, order: OrderIntent, account_id: str) -> list[Violation]:
        now = self.clock()
        account = self.accounts.get(account_id)
        if account is None:
            violations = [self._unknown_account(account_id)]
        else:
            if order.order_id:
                # The exchange reports an order (PENDING_NEW) before it asks for the
                # check, and the report may arrive first: that is this order, not another.
                account.book.open_orders.pop(order.order_id, None)
            violations = self._evaluate(order, account, now)
        if violations:
            self.events.publish(
                RiskEvent(
                    type=RiskEventType.ORDER_DENIED,
                    time=datetime.fromtimestamp(now, UTC),
                    message=f"{order.side.name} {order.quantity} {order.symbol} on "
                    f"{account_id} denied",
                    violations=tuple(violations),
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    account_id=account_id,
                )
            )
        elif account is not None:
            account.book.record_submission(now)
            if order.order_id and order.order_id not in self._finished:
                account.book.reserve(
                    OpenOrder(order.order_id, order.symbol, order.side, order.quantity, order.price)
                )
        return violations

    def _unknown_account(self, account_id: str) -> Violation:
        if not self.accounts_listed:
            return Violation(
                Reason.RISK_STATE_STALE,
                "risk has not listed the exchange's venues yet: orders are denied until it has",
            )
        return Violation(
            Reason.RISK_UNKNOWN_ACCOUNT,
            f"venue {account_id[:60]!r} is no venue account risk knows (known: "
            f"{', '.join(sorted(self.accounts)) or 'none'}); its orders cannot be checked",
            actual=account_id[:60],
        )

    def apply_order(self, account_id: str, order_id: str, rest: OpenOrder | None) -> None:
        """An order as the exchange reports it: `rest` is what may still fill, None once
        nothing can (filled, cancelled, rejected). The reservation goes with the report."""
        account = self.accounts.get(account_id)
        if account is None:
            return
        if rest is None:
            account.book.open_orders.pop(order_id, None)
            _remember(self._finished, order_id, None)
            return
        decided = self._decisions.get(order_id)
        if (decided is not None and decided.violations) or order_id in self._finished:
            # A late report of an order that was denied or has finished: it never fills.
            return
        account.book.open_orders[order_id] = rest

    def report_unknown_outcome(
        self, account_id: str, order_id: str, client_order_id: str, detail: str
    ) -> None:
        """The exchange says an order's outcome at the venue is still unknown past its
        alert window: the operator is told (the order stays counted open)."""
        message = (
            f"account {account_id}: order {order_id} ({client_order_id}) outcome at the venue "
            f"is still unknown ({detail}); it is counted open at its full size until settled. "
            "Check the venue; do not place it again"
        )
        log.error(message, extra={"account_id": account_id, "order_id": order_id})
        self.events.publish(
            RiskEvent(
                type=RiskEventType.ORDER_OUTCOME_UNKNOWN,
                time=self.utc_now(),
                message=message,
                order_id=order_id,
                client_order_id=client_order_id,
                account_id=account_id,
            )
        )

    # --- the control path --------------------------------------------------------------

    async def set_trading_state(
        self, state: TradingState, reason: str, updated_by: str, account_id: str = ""
    ) -> TradingStateChange:
        """Sets the global kill switch, or with `account_id` that account's state."""
        account = self.account(account_id) if account_id else None
        async with self._control:
            change = TradingStateChange(state, reason, updated_by, self.utc_now(), account_id)
            await self.repository.append_trading_state(change)
            if account is None:
                self.trading_state = change
            else:
                account.trading_state = change
        scope = f"account {account_id}" if account_id else "global"
        # Restricting trading is worth a warning; trading back to normal is not.
        log.log(
            logging.INFO if state is TradingState.ACTIVE else logging.WARNING,
            "trading state %s (%s)",
            state.name,
            scope,
            extra={"reason": reason, "updated_by": updated_by, "account_id": account_id},
        )
        self.events.publish(
            RiskEvent(
                type=RiskEventType.TRADING_STATE_CHANGED,
                time=change.update_time,
                message=f"{scope} trading state set to {state.name} by {updated_by}: {reason}",
                trading_state=change,
                account_id=account_id,
            )
        )
        return change

    async def update_limits(self, limits: Limits, updated_by: str, account_id: str = "") -> Limits:
        """Sets the global defaults (followed by every account without its own), or with
        `account_id` that account's own limits."""
        account = self.account(account_id) if account_id else None
        async with self._control:
            when = self.utc_now()
            await self.repository.save_limits(limits, updated_by, when, account_id)
            if account is None:
                self.limits = limits
                for follower in self.accounts.values():
                    if not follower.own_limits:
                        follower.limits = limits
            else:
                account.limits, account.own_limits = limits, True
        scope = f"account {account_id}" if account_id else "global default"
        self.events.publish(
            RiskEvent(
                type=RiskEventType.LIMITS_UPDATED,
                time=when,
                message=f"{scope} limits updated by {updated_by}",
                account_id=account_id,
            )
        )
        for affected in [account] if account is not None else list(self.accounts.values()):
            await self.after_equity_change(affected)
        return limits

    async def after_equity_change(self, account: AccountRisk) -> None:
        """Halts the account (once per breach) when its daily loss or drawdown limit is
        reached; the other accounts trade on.

        Only a fresh book moves the equity peak and the day's opening equity: half a
        snapshot (cash without marks) must not become either."""
        book = account.book
        if not book.fresh:
            return
        self.note_sync()
        book.mark_equity(self.utc_now())
        breaches = self._breached_limits(account)
        fresh = [violation for violation in breaches if violation.reason not in account.breaches]
        account.breaches = {violation.reason for violation in breaches}
        if not fresh:
            return
        message = f"account {account.account_id}: " + "; ".join(
            violation.message for violation in fresh
        )
        self.events.publish(
            RiskEvent(
                type=RiskEventType.LIMIT_BREACHED,
                time=self.utc_now(),
                message=message,
                violations=tuple(fresh),
                account_id=account.account_id,
            )
        )
        if account.trading_state.state is not TradingState.HALTED:
            await self.set_trading_state(
                TradingState.HALTED, message, RISK_ACTOR, account.account_id
            )

    def _breached_limits(self, account: AccountRisk) -> list[Violation]:
        breaches = []
        limits, book = account.limits, account.book
        loss = book.daily_loss()
        if limits.daily_loss_limit is not None and loss >= limits.daily_loss_limit:
            breaches.append(
                Violation(
                    Reason.RISK_DAILY_LOSS,
                    f"daily loss {loss} reached the limit {limits.daily_loss_limit}",
                    decimal_text(limits.daily_loss_limit),
                    decimal_text(loss),
                )
            )
        drawdown = book.drawdown()
        if limits.max_drawdown is not None and drawdown >= limits.max_drawdown:
            breaches.append(
                Violation(
                    Reason.RISK_MAX_DRAWDOWN,
                    f"drawdown {drawdown:.4f} from the equity peak {book.equity_peak} "
                    f"reached the limit {limits.max_drawdown}",
                    decimal_text(limits.max_drawdown),
                    decimal_text(drawdown),
                )
            )
        return breaches

    # --- exposure ------------------------------------------------------------------------

    def exposure(self, account_id: str = "") -> Exposure:
        """One account's exposure, or with '' the sum over every account (amounts in
        each account's quote currency, added as they are)."""
        if account_id:
            return self._account_exposure(self.account(account_id))
        parts = [self._account_exposure(a) for _, a in sorted(self.accounts.items())]
        gross = sum((part.gross for part in parts), ZERO)
        equity = sum((part.equity for part in parts), ZERO)
        return Exposure(
            gross=gross,
            net=sum((part.net for part in parts), ZERO),
            equity=equity,
            leverage=gross / equity if equity > 0 else None,
            symbols=tuple(row for part in parts for row in part.symbols),
        )

    def _account_exposure(self, account: AccountRisk) -> Exposure:
        book = account.book
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
                    account_id=account.account_id,
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
            account_id=account.account_id,
        )
