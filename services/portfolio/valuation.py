"""Marking an account to market: equity, cash, positions value and PnL.

Equity is the quote-currency cash plus the market value of every position (spot
semantics: a long holds the base asset, a short owes it). Assets that are neither the
quote currency nor held through a position (a BNB fee balance) are listed in the
balances but not valued.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.portfolio.accounting import ZERO, Position
from services.portfolio.ledger import AccountBook
from services.portfolio.marks import MarkBook


@dataclass(frozen=True, slots=True)
class PositionValue:
    position: Position
    mark: Decimal
    market_value: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class BookValue:
    cash: Decimal
    positions_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    fees: Decimal

    @property
    def equity(self) -> Decimal:
        return self.cash + self.positions_value


def mark_for(book: AccountBook, symbol: str, marks: MarkBook) -> Decimal:
    """The exchange's mark, else the last fill price, else the entry price."""
    mark = marks.get(book.account.venue, symbol)
    if mark is None:
        mark = book.last_prices.get(symbol)
    if mark is None:
        position = book.positions.get(symbol)
        mark = position.average_price if position else ZERO
    return mark


def value_position(book: AccountBook, position: Position, marks: MarkBook) -> PositionValue:
    mark = mark_for(book, position.symbol, marks)
    return PositionValue(position, mark, position.market_value(mark), position.unrealized_pnl(mark))


def value_book(book: AccountBook, marks: MarkBook) -> BookValue:
    positions_value = unrealized = realized = fees = ZERO
    for position in book.positions.values():
        realized += position.realized_pnl
        fees += position.fees
        if position.quantity:
            value = value_position(book, position, marks)
            positions_value += value.market_value
            unrealized += value.unrealized_pnl
    return BookValue(
        cash=book.balances.get(book.account.quote_currency, ZERO),
        positions_value=positions_value,
        unrealized_pnl=unrealized,
        realized_pnl=realized,
        fees=fees,
    )
