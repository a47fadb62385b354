"""The pre-trade rules: an order against the limits, the trading state and the book.

`check_order` runs every rule and returns every violation (an empty list approves).
Each rule is a small function with one stable reason (services.risk.reasons).
Rules that cap exposure (position, gross, leverage, loss limits, cooldown, VaR) let an
order through that only reduces a position: the operator must always be able to get
out. Nothing here does I/O or awaits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import NamedTuple

from common.wire import decimal_text
from services.risk.limits import Limits
from services.risk.reasons import Reason
from services.risk.risk_book import ZERO, Market, OrderSide, RiskBook
from services.risk.trading_state import TradingState


@dataclass(frozen=True)
class Violation:
    reason: Reason
    message: str
    limit: str = ""
    actual: str = ""


class OrderIntent(NamedTuple):
    """An order as CheckOrder sees it (a NamedTuple: immutable and cheap to build)."""

    symbol: str
    side: OrderSide
    quantity: Decimal
    # The limit price; None for a market order (checked at the mark).
    price: Decimal | None
    reduce_only: bool = False
    order_id: str = ""
    client_order_id: str = ""


@dataclass
class Check:
    """One order in the context of the book: what every rule reads, computed once
    (not frozen: a frozen dataclass pays for each field on the hot path)."""

    order: OrderIntent
    book: RiskBook
    limits: Limits
    market: Market | None
    # The limit price, or the mark for a market order; None when neither is known.
    price: Decimal | None
    mark: Decimal | None
    position: Decimal
    # The position if this order and every open order on its side filled.
    projected: Decimal
    # Whether filling it would make the position larger in absolute terms.
    increases: bool
    # Epoch seconds.
    now: float

    @property
    def notional(self) -> Decimal:
        return self.order.quantity * (self.price or ZERO)

    @cached_property
    def equity(self) -> Decimal:
        return self.book.equity

    @cached_property
    def utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


# The projected one-day 99% VaR with the order filled, None when it cannot be
# estimated (services.risk.var_guard).
VarEstimate = Callable[[Check], Decimal | None]


def check_order(
    order: OrderIntent,
    book: RiskBook,
    limits: Limits,
    *,
    state: TradingState,
    now: float,
    var_estimate: VarEstimate | None = None,
    state_scope: str = "",
) -> list[Violation]:
    """Every rule the order fails; an empty list approves it. `state_scope` says whose
    trading state it is (" on account okx", " globally") in the messages."""
    violations: list[Violation] = []
    if state is TradingState.HALTED:
        violations.append(
            Violation(
                Reason.RISK_TRADING_HALTED,
                f"trading is halted{state_scope}: every new order is denied",
            )
        )
    if not book.fresh:
        violations.append(
            Violation(
                Reason.RISK_STATE_STALE,
                "risk state is not in sync with "
                + ", ".join(book.stale_sources())
                + ": orders are denied until it is",
            )
        )
        return violations
    check = _context(order, book, limits, now)
    if state is TradingState.REDUCING and check.increases:
        violations.append(
            Violation(
                Reason.RISK_REDUCING_ONLY,
                f"trading is REDUCING{state_scope}: only orders that reduce a position pass",
                actual=decimal_text(check.position),
            )
        )
    for rule in RULES:
        violations.extend(rule(check))
    if limits.max_var is not None and check.increases:
        violations.extend(max_var(check, var_estimate))
    return violations


def _context(order: OrderIntent, book: RiskBook, limits: Limits, now: float) -> Check:
    mark = book.mark(order.symbol)
    position = book.position(order.symbol)
    pending = book.open_quantity(order.symbol, order.side)
    projected = position + order.side.sign * (pending + order.quantity)
    return Check(
        order=order,
        book=book,
        limits=limits,
        market=book.markets.get(order.symbol),
        price=order.price if order.price is not None else mark,
        mark=mark,
        position=position,
        projected=projected,
        increases=abs(projected) > abs(position),
        now=now,
    )


Rule = Callable[[Check], Iterator[Violation]]


def symbol_allowed(check: Check) -> Iterator[Violation]:
    symbol = check.order.symbol
    allowed = check.limits.allowed_symbols
    if check.market is None:
        yield Violation(Reason.RISK_SYMBOL_NOT_ALLOWED, f"{symbol} is not a market of the venue")
    elif allowed and symbol not in allowed:
        yield Violation(Reason.RISK_SYMBOL_NOT_ALLOWED, f"{symbol} is not in the allowed symbols")


def positive_amounts(check: Check) -> Iterator[Violation]:
    order = check.order
    if order.quantity <= 0:
        yield Violation(
            Reason.RISK_INVALID_QUANTITY,
            "quantity must be greater than 0",
            actual=decimal_text(order.quantity),
        )
    if order.price is not None and order.price <= 0:
        yield Violation(
            Reason.RISK_INVALID_PRICE,
            "price must be greater than 0",
            actual=decimal_text(order.price),
        )
    if check.mark is None and order.price is None:
        yield Violation(
            Reason.RISK_NO_MARK_PRICE,
            f"no mark price for {order.symbol}: a market order cannot be valued",
        )


def precision(check: Check) -> Iterator[Violation]:
    market, order = check.market, check.order
    if market is None:
        return
    if market.quantity_increment and order.quantity % market.quantity_increment:
        yield Violation(
            Reason.RISK_PRECISION,
            "quantity is not a multiple of the market's quantity step",
            decimal_text(market.quantity_increment),
            decimal_text(order.quantity),
        )
    if market.price_increment and order.price is not None and order.price % market.price_increment:
        yield Violation(
            Reason.RISK_PRECISION,
            "price is not a multiple of the market's price step",
            decimal_text(market.price_increment),
            decimal_text(order.price),
        )
    if market.min_quantity is not None and order.quantity < market.min_quantity:
        yield Violation(
            Reason.RISK_MIN_QUANTITY,
            "quantity is below the market's minimum",
            decimal_text(market.min_quantity),
            decimal_text(order.quantity),
        )
    if market.max_quantity is not None and order.quantity > market.max_quantity:
        yield Violation(
            Reason.RISK_MAX_QUANTITY,
            "quantity is above the market's maximum",
            decimal_text(market.max_quantity),
            decimal_text(order.quantity),
        )


def order_notional(check: Check) -> Iterator[Violation]:
    if check.price is None:
        return
    notional = check.notional
    floors = [
        value
        for value in (check.limits.min_order_notional, check.market and check.market.min_notional)
        if value
    ]
    if floors and notional < max(floors):
        yield Violation(
            Reason.RISK_MIN_NOTIONAL,
            "order value is below the minimum",
            decimal_text(max(floors)),
            decimal_text(notional),
        )
    ceiling = check.limits.max_order_notional
    if ceiling is not None and notional >= ceiling:
        yield Violation(
            Reason.RISK_MAX_NOTIONAL,
            "order value reaches the maximum",
            decimal_text(ceiling),
            decimal_text(notional),
        )


def position_limits(check: Check) -> Iterator[Violation]:
    if not check.increases:
        return
    symbol = check.order.symbol
    quantity_limit = check.limits.position_quantity_limit(symbol)
    size = abs(check.projected)
    if quantity_limit is not None and size >= quantity_limit:
        yield Violation(
            Reason.RISK_MAX_POSITION,
            f"{symbol} position (with open orders) would reach the quantity limit",
            decimal_text(quantity_limit),
            decimal_text(size),
        )
    notional_limit = check.limits.position_notional_limit(symbol)
    if notional_limit is not None and check.price is not None:
        notional = size * check.price
        if notional >= notional_limit:
            yield Violation(
                Reason.RISK_MAX_POSITION,
                f"{symbol} position value (with open orders) would reach the notional limit",
                decimal_text(notional_limit),
                decimal_text(notional),
            )


def exposure_limits(check: Check) -> Iterator[Violation]:
    limits = check.limits
    if not check.increases or check.price is None:
        return
    if limits.max_gross_exposure is None and limits.max_leverage is None:
        return
    gross = check.book.gross_exposure() + check.notional
    if limits.max_gross_exposure is not None and gross >= limits.max_gross_exposure:
        yield Violation(
            Reason.RISK_MAX_GROSS_EXPOSURE,
            "gross exposure (positions and open orders) would reach the limit",
            decimal_text(limits.max_gross_exposure),
            decimal_text(gross),
        )
    if limits.max_leverage is not None:
        equity = check.equity
        if equity <= 0:
            yield Violation(
                Reason.RISK_MAX_LEVERAGE,
                "equity is not positive",
                decimal_text(limits.max_leverage),
                decimal_text(equity),
            )
        elif (leverage := gross / equity) >= limits.max_leverage:
            yield Violation(
                Reason.RISK_MAX_LEVERAGE,
                "leverage (gross exposure over equity) would reach the limit",
                decimal_text(limits.max_leverage),
                decimal_text(leverage.quantize(Decimal("0.0001"))),
            )


def open_orders(check: Check) -> Iterator[Violation]:
    limit = check.limits.max_open_orders
    count = len(check.book.open_orders)
    if limit is not None and count >= limit:
        yield Violation(
            Reason.RISK_MAX_OPEN_ORDERS,
            "the number of open orders is at the limit",
            str(limit),
            str(count),
        )


def order_rate(check: Check) -> Iterator[Violation]:
    for limit, seconds, unit in (
        (check.limits.max_orders_per_second, 1.0, "second"),
        (check.limits.max_orders_per_minute, 60.0, "minute"),
    ):
        if limit is None:
            continue
        count = check.book.submissions_within(check.now, seconds, up_to=limit)
        if count >= limit:
            yield Violation(
                Reason.RISK_ORDER_RATE,
                f"{count} orders in the last {unit}: at the limit",
                str(limit),
                str(count),
            )


def price_band(check: Check) -> Iterator[Violation]:
    band, price, mark = check.limits.max_price_deviation, check.order.price, check.mark
    if band is None or price is None or mark is None or mark <= 0 or price <= 0:
        return
    deviation = abs(price - mark) / mark
    if deviation >= band:
        yield Violation(
            Reason.RISK_PRICE_BAND,
            f"price {price} is {deviation:.2%} from the mark {mark}",
            decimal_text(band),
            decimal_text(deviation.quantize(Decimal("0.000001"))),
        )


def reduce_only(check: Check) -> Iterator[Violation]:
    order = check.order
    if not order.reduce_only:
        return
    after = check.position + order.side.sign * order.quantity
    if check.position == 0 or abs(after) > abs(check.position) or after * check.position < 0:
        yield Violation(
            Reason.RISK_REDUCE_ONLY,
            "a reduce-only order must not open, increase or flip the position",
            decimal_text(abs(check.position)),
            decimal_text(order.quantity),
        )


def balance(check: Check) -> Iterator[Violation]:
    """Spot: buys must be paid from cash, sells from holdings, open orders included."""
    order, book = check.order, check.book
    if check.market is None or not check.market.spot or check.price is None:
        return
    if order.side is OrderSide.BUY:
        needed = book.open_buy_notional() + check.notional
        if needed > book.cash:
            yield Violation(
                Reason.RISK_INSUFFICIENT_BALANCE,
                f"{check.market.quote} needed by open buy orders and this one exceeds the cash",
                decimal_text(book.cash),
                decimal_text(needed),
            )
    else:
        needed = book.open_quantity(order.symbol, OrderSide.SELL) + order.quantity
        if needed > check.position:
            yield Violation(
                Reason.RISK_INSUFFICIENT_BALANCE,
                f"{check.market.base} needed by open sell orders and this one exceeds the holding",
                decimal_text(check.position),
                decimal_text(needed),
            )


def loss_limits(check: Check) -> Iterator[Violation]:
    limits, book = check.limits, check.book
    if not check.increases:
        return
    if limits.daily_loss_limit is not None:
        loss = book.day_start_equity - check.equity
        if loss >= limits.daily_loss_limit:
            yield Violation(
                Reason.RISK_DAILY_LOSS,
                "the day's loss has reached the limit: only reducing orders pass",
                decimal_text(limits.daily_loss_limit),
                decimal_text(loss),
            )
    if limits.max_drawdown is not None:
        drawdown = book.drawdown(check.equity)
        if drawdown >= limits.max_drawdown:
            yield Violation(
                Reason.RISK_MAX_DRAWDOWN,
                "drawdown from the equity peak has reached the limit",
                decimal_text(limits.max_drawdown),
                decimal_text(drawdown.quantize(Decimal("0.000001"))),
            )


def loss_cooldown(check: Check) -> Iterator[Violation]:
    limits, book = check.limits, check.book
    if (
        not check.increases
        or limits.loss_cooldown_trades is None
        or limits.loss_cooldown is None
        or book.losing_streak < limits.loss_cooldown_trades
        or book.last_loss_time is None
    ):
        return
    until = book.last_loss_time + limits.loss_cooldown
    if check.utc_now < until:
        yield Violation(
            Reason.RISK_LOSS_COOLDOWN,
            f"{book.losing_streak} losing trades in a row: new positions wait until "
            f"{until.isoformat(timespec='seconds')}",
            str(limits.loss_cooldown_trades),
            str(book.losing_streak),
        )


def max_var(check: Check, var_estimate: VarEstimate | None) -> Iterator[Violation]:
    """Fail closed: without a return history to estimate from, new exposure waits."""
    limit = check.limits.max_var
    projected = var_estimate(check) if var_estimate is not None else None
    if projected is None:
        yield Violation(
            Reason.RISK_MAX_VAR,
            "the portfolio's VaR cannot be estimated yet (no return history): retry shortly",
            decimal_text(limit),
        )
    elif limit is not None and projected >= limit:
        yield Violation(
            Reason.RISK_MAX_VAR,
            "the portfolio's one-day 99% VaR with this order would reach the limit",
            decimal_text(limit),
            decimal_text(projected),
        )


RULES: tuple[Rule, ...] = (
    symbol_allowed,
    positive_amounts,
    precision,
    order_notional,
    position_limits,
    exposure_limits,
    open_orders,
    order_rate,
    price_band,
    reduce_only,
    balance,
    loss_limits,
    loss_cooldown,
)
