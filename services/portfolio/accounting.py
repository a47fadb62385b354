"""Position arithmetic: signed quantity, entry price, realized PnL and fees, fill by fill.

Pure and synchronous: no I/O, no clock. The ledger feeds it fills in ledger order; the
tests feed it hand-worked sequences.

Conventions (those of NautilusTrader and Freqtrade where they agree):
- Quantity is signed: a buy adds, a sell subtracts; negative is short.
- Realized PnL is gross of fees; fees are kept apart, in the symbol's quote currency,
  and `net = realized + unrealized - fees`.
- A fee charged in the base currency is a disposal of that quantity at the fill price
  (the venue keeps it): the position shrinks by it, its PnL against the entry price is
  realized, and its value at the fill price is counted as a fee.
- A fee in any other currency (BNB) changes that asset's balance only: it has no price
  in the symbol's quote currency here, so it is not in `fees`.
- Cost basis is `quantity * average_entry_price`, signed like the quantity, so
  `unrealized = market_value - cost_basis` for longs and shorts alike.
- Amounts are exact Decimals; only the average entry price is a division: it is rounded
  half-even to PRICE_DECIMALS (8) decimal places, the finest price step of any Binance
  spot market (ccxt's usual precision), so it never shows more digits than a venue
  could quote. Cost basis is `quantity * that price`; the rounding moves realized PnL
  by at most half a unit of the 8th decimal per unit of quantity.
- A round trip closes when the position goes back to zero or flips through it; its
  PnL (realized minus fees since it opened) feeds win rate and profit factor.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Protocol

ZERO = Decimal(0)
# Decimal places of an average entry price (see the module's docstring).
PRICE_DECIMALS = 8
_PRICE_STEP = Decimal(1).scaleb(-PRICE_DECIMALS)


def quantize_price(price: Decimal) -> Decimal:
    """`price` rounded half-even to PRICE_DECIMALS places; exact prices stay as they are."""
    if price.as_tuple().exponent >= -PRICE_DECIMALS:  # type: ignore[operator]
        return price
    return price.quantize(_PRICE_STEP, rounding=ROUND_HALF_EVEN)


class TradeSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class CostMethod(StrEnum):
    AVERAGE_COST = "average_cost"
    FIFO = "fifo"


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill as the ledger keeps it; unique by (venue, trade_id)."""

    venue: str
    trade_id: str
    symbol: str
    side: TradeSide
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    time: datetime
    order_id: str = ""
    client_order_id: str = ""
    liquidity: str = ""
    # The exchange outbox sequence it came from; 0 for imported fills.
    sequence: int = 0

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side is TradeSide.BUY else -self.quantity


@functools.lru_cache(maxsize=4096)
def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of a ccxt unified symbol: "BTC/USDT" and "BTC/USDT:USDT" -> BTC, USDT."""
    base, _, rest = symbol.partition("/")
    quote = rest.partition(":")[0]
    return base, quote


def sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


class CostBasis(Protocol):
    """How a position's entries are matched by its exits."""

    @property
    def quantity(self) -> Decimal: ...

    @property
    def average_price(self) -> Decimal: ...

    @property
    def cost_basis(self) -> Decimal: ...

    def fill(self, delta: Decimal, price: Decimal) -> Decimal:
        """Adds a signed quantity at `price`; returns the PnL it realizes."""
        ...

    def copy(self) -> CostBasis: ...


@dataclass(slots=True)
class AverageCost:
    """Exits realize against the average entry price (Freqtrade, Hummingbot, Nautilus)."""

    quantity: Decimal = ZERO
    average_price: Decimal = ZERO

    @property
    def cost_basis(self) -> Decimal:
        return self.quantity * self.average_price

    def copy(self) -> AverageCost:
        return AverageCost(self.quantity, self.average_price)

    def fill(self, delta: Decimal, price: Decimal) -> Decimal:
        held = self.quantity
        if held == 0 or sign(held) == sign(delta):
            total = abs(held) + abs(delta)
            self.average_price = quantize_price(
                (abs(held) * self.average_price + abs(delta) * price) / total
            )
            self.quantity = held + delta
            return ZERO
        closed = min(abs(delta), abs(held))
        realized = closed * (price - self.average_price) * sign(held)
        self.quantity = held + delta
        if self.quantity == 0:
            self.average_price = ZERO
        elif sign(self.quantity) != sign(held):  # flipped through zero: the rest opens anew
            self.average_price = price
        return realized


@dataclass(slots=True)
class Fifo:
    """Exits realize against the oldest open lots first."""

    # (signed quantity, price), oldest first; all lots have the same sign.
    lots: deque[tuple[Decimal, Decimal]] = field(default_factory=deque)

    @property
    def quantity(self) -> Decimal:
        return sum((lot for lot, _ in self.lots), ZERO)

    @property
    def cost_basis(self) -> Decimal:
        return sum((lot * price for lot, price in self.lots), ZERO)

    @property
    def average_price(self) -> Decimal:
        quantity = self.quantity
        return quantize_price(self.cost_basis / quantity) if quantity else ZERO

    def copy(self) -> Fifo:
        return Fifo(deque(self.lots))

    def fill(self, delta: Decimal, price: Decimal) -> Decimal:
        realized = ZERO
        while delta and self.lots and sign(self.lots[0][0]) != sign(delta):
            lot, lot_price = self.lots[0]
            closed = min(abs(delta), abs(lot))
            realized += closed * (price - lot_price) * sign(lot)
            remaining = lot + closed * sign(delta)
            delta -= closed * sign(delta)
            if remaining:
                self.lots[0] = (remaining, lot_price)
            else:
                self.lots.popleft()
        if delta:
            self.lots.append((delta, price))
        return realized


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A position from opening to flat (or to a flip): one "trade" for win rate."""

    symbol: str
    open_time: datetime
    close_time: datetime
    pnl: Decimal


@dataclass(slots=True)
class Position:
    """One account's position in one symbol, with its running PnL."""

    symbol: str
    basis: CostBasis = field(default_factory=AverageCost)
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    # Realized minus fees since the current round trip opened.
    open_pnl: Decimal = ZERO
    open_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def quantity(self) -> Decimal:
        return self.basis.quantity

    @property
    def average_price(self) -> Decimal:
        return self.basis.average_price

    @property
    def cost_basis(self) -> Decimal:
        return self.basis.cost_basis

    def copy(self) -> Position:
        """An independent copy: the ledger works on copies until a batch commits."""
        return replace(self, basis=self.basis.copy())

    def market_value(self, mark: Decimal) -> Decimal:
        return self.quantity * mark

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return self.market_value(mark) - self.cost_basis

    def apply(self, trade: Trade) -> RoundTrip | None:
        """Applies one fill; returns the round trip it closed, if any."""
        base, quote = split_symbol(trade.symbol)
        before = self.quantity
        if before == 0:
            self.open_time = trade.time
        realized = self.basis.fill(trade.signed_quantity, trade.price)
        fee_value = ZERO
        if trade.fee and trade.fee_currency == quote:
            fee_value = trade.fee
        elif trade.fee and trade.fee_currency == base:
            realized += self.basis.fill(-trade.fee, trade.price)
            fee_value = trade.fee * trade.price
        self.realized_pnl += realized
        self.fees += fee_value
        self.open_pnl += realized - fee_value
        # Never back in time (a fill stamped before the account's opening, imported
        # history): readers such as risk take an older update_time for a stale report.
        if self.update_time is None or trade.time > self.update_time:
            self.update_time = trade.time
        after = self.quantity
        if before == 0 or (after != 0 and sign(after) == sign(before)):
            return None
        closed = RoundTrip(
            symbol=self.symbol,
            open_time=self.open_time or trade.time,
            close_time=trade.time,
            pnl=self.open_pnl,
        )
        self.open_pnl = ZERO
        self.open_time = trade.time if after else None
        return closed


def balance_changes(trade: Trade) -> dict[str, Decimal]:
    """How a fill changes the account's balance of each asset (spot semantics)."""
    base, quote = split_symbol(trade.symbol)
    changes = {base: trade.signed_quantity, quote: -trade.signed_quantity * trade.price}
    if trade.fee:
        changes[trade.fee_currency] = changes.get(trade.fee_currency, ZERO) - trade.fee
    return changes


def replay(
    trades: list[Trade],
    method: CostMethod,
    opening: Mapping[str, tuple[Decimal, Decimal]] | None = None,
) -> dict[str, Position]:
    """Positions by symbol after `trades`, in order, under a cost method, each starting
    from its `opening` (quantity, price) if the account opened with one."""

    def new_position(symbol: str) -> Position:
        basis: CostBasis = AverageCost() if method is CostMethod.AVERAGE_COST else Fifo()
        return Position(symbol, basis)

    positions: dict[str, Position] = {}
    for symbol, (quantity, price) in (opening or {}).items():
        positions[symbol] = new_position(symbol)
        positions[symbol].basis.fill(quantity, price)
    for trade in trades:
        position = positions.get(trade.symbol)
        if position is None:
            position = positions[trade.symbol] = new_position(trade.symbol)
        position.apply(trade)
    return positions
