"""The risk book (RiskBook): one venue account as CheckOrder sees it, kept in memory.

Positions, cash and equity (with its peak and the UTC day's opening value) come from
the portfolio service; markets, marks and open orders from the exchange; submission
times and the losing-trade streak are recorded here. The feeds (services.risk.feeds)
write into the book; the rules (services.risk.rules) only read it. Nothing here does
I/O, so a check costs microseconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)
# How far back submission times are kept (the longest rate window), and at most how
# many: a rate limit above this many per minute counts no further.
RATE_WINDOW_SECONDS = 60.0
MAX_TRACKED_SUBMISSIONS = 10_000
# Feeds the book must have synced before it is fresh.
SOURCES = frozenset({"portfolio", "markets", "orders", "tickers"})


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


@dataclass(frozen=True)
class Market:
    """A venue's market: its precision and the venue's own order limits."""

    symbol: str
    base: str
    quote: str
    spot: bool = True
    price_increment: Decimal | None = None
    quantity_increment: Decimal | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    min_notional: Decimal | None = None


@dataclass(frozen=True)
class OpenOrder:
    """The unfilled rest of an order that may still fill."""

    order_id: str
    symbol: str
    side: OrderSide
    remaining: Decimal
    # None for a market order not yet filled: valued at the mark.
    price: Decimal | None


@dataclass
class Position:
    quantity: Decimal = ZERO
    cost_basis: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    update_time: datetime | None = None


@dataclass
class RiskBook:
    markets: dict[str, Market] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    open_orders: dict[str, OpenOrder] = field(default_factory=dict)
    cash: Decimal = ZERO
    equity_peak: Decimal = ZERO
    day: date | None = None
    day_start_equity: Decimal = ZERO
    # The portfolio's net transfers (deposits minus withdrawals) as last applied.
    transfers: Decimal = ZERO
    losing_streak: int = 0
    last_loss_time: datetime | None = None
    # Epoch seconds of approved submissions, oldest first.
    submissions: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_TRACKED_SUBMISSIONS))
    synced: set[str] = field(default_factory=set)

    # --- freshness -----------------------------------------------------------------

    @property
    def fresh(self) -> bool:
        """Every feed synced, and every position marked: until then equity is unknown."""
        return self.synced >= SOURCES and not self.unmarked_positions()

    def unmarked_positions(self) -> list[str]:
        return [s for s, p in self.positions.items() if p.quantity and s not in self.marks]

    def stale_sources(self) -> list[str]:
        unmarked = self.unmarked_positions()
        return sorted(SOURCES - self.synced) + (
            [f"marks of {', '.join(unmarked)}"] if unmarked else []
        )

    # --- values ----------------------------------------------------------------------

    def position(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return position.quantity if position is not None else ZERO

    def mark(self, symbol: str) -> Decimal | None:
        return self.marks.get(symbol)

    @property
    def positions_value(self) -> Decimal:
        return sum((p.quantity * self.marks.get(s, ZERO) for s, p in self.positions.items()), ZERO)

    @property
    def equity(self) -> Decimal:
        return self.cash + self.positions_value

    def open_quantity(self, symbol: str, side: OrderSide) -> Decimal:
        return sum(
            (
                o.remaining
                for o in self.open_orders.values()
                if o.symbol == symbol and o.side is side
            ),
            ZERO,
        )

    def open_order_notional(self, order: OpenOrder) -> Decimal:
        price = order.price if order.price is not None else self.marks.get(order.symbol, ZERO)
        return order.remaining * price

    def open_buy_notional(self) -> Decimal:
        """Cash the open buy orders will spend if they fill."""
        return sum(
            (
                self.open_order_notional(o)
                for o in self.open_orders.values()
                if o.side is OrderSide.BUY
            ),
            ZERO,
        )

    def gross_exposure(self) -> Decimal:
        """Positions at the mark plus what every open order would add, in quote currency."""
        positions = sum(
            (abs(p.quantity) * self.marks.get(s, ZERO) for s, p in self.positions.items()), ZERO
        )
        return positions + sum(
            (self.open_order_notional(o) for o in self.open_orders.values()), ZERO
        )

    def daily_loss(self) -> Decimal:
        """Equity lost since the UTC day began (negative when up)."""
        return self.day_start_equity - self.equity

    def drawdown(self, equity: Decimal | None = None) -> Decimal:
        """The fraction of the equity peak lost (0 at a new peak); `equity` if known."""
        if self.equity_peak <= 0:
            return ZERO
        equity = self.equity if equity is None else equity
        return max(ZERO, (self.equity_peak - equity) / self.equity_peak)

    # --- order-rate windows ------------------------------------------------------------

    def submissions_within(self, now: float, seconds: float, up_to: int) -> int:
        """Approved submissions in the last `seconds`, counted up to `up_to` at most."""
        count = 0
        for moment in reversed(self.submissions):
            if moment <= now - seconds or count >= up_to:
                break
            count += 1
        return count

    def record_submission(self, now: float) -> None:
        self.submissions.append(now)
        while self.submissions[0] <= now - RATE_WINDOW_SECONDS:
            self.submissions.popleft()

    def reserve(self, order: OpenOrder) -> None:
        """Counts an approved order as open at once, before the exchange reports it: a
        burst of orders cannot pass the limits on each other's blind side. The
        exchange's order updates replace or remove it."""
        self.open_orders.setdefault(order.order_id, order)

    # --- updates from the feeds ------------------------------------------------------

    def mark_equity(self, now: datetime) -> None:
        """Moves the peak and, on a new UTC day, the day's opening equity."""
        equity = self.equity
        self.equity_peak = max(self.equity_peak, equity)
        today = now.astimezone(UTC).date()
        if self.day != today:
            self.day = today
            self.day_start_equity = equity

    def apply_transfers(self, total: Decimal) -> None:
        """The portfolio's net transfers are now `total`: the equity peak and the day's
        opening equity move by the change, with the cash it brings, so a deposit is not
        a gain and a withdrawal not a loss (the daily-loss and drawdown rules)."""
        change = total - self.transfers
        self.transfers = total
        if change and self.day is not None:
            self.day_start_equity += change
        if change and self.equity_peak:
            self.equity_peak += change

    def reset_portfolio(self, cash: Decimal, positions: dict[str, Position]) -> None:
        """Replaces cash and positions with a snapshot (no trade is counted)."""
        self.cash = cash
        self.positions = positions

    def apply_position(
        self,
        symbol: str,
        *,
        quantity: Decimal,
        cost_basis: Decimal,
        realized_pnl: Decimal,
        update_time: datetime | None,
        now: datetime,
    ) -> bool:
        """Applies a position as the portfolio reports it; returns False for a stale one.

        Cash moves by what the fill paid or received (-delta cost basis + delta realized,
        exact under average cost); a fall of realized PnL counts a losing trade.
        """
        current = self.positions.get(symbol)
        if current is None:
            current = self.positions[symbol] = Position()
        elif (
            update_time is not None
            and current.update_time is not None
            and update_time < current.update_time
        ):
            return False
        self.cash += (current.cost_basis - cost_basis) + (realized_pnl - current.realized_pnl)
        realized_change = realized_pnl - current.realized_pnl
        if realized_change < 0:
            self.losing_streak += 1
            self.last_loss_time = now
        elif realized_change > 0:
            self.losing_streak = 0
        current.quantity = quantity
        current.cost_basis = cost_basis
        current.realized_pnl = realized_pnl
        current.update_time = update_time
        return True
