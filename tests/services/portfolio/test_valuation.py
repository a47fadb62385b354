"""Marking to market: whatever the fills, equity from the balances equals the starting
cash plus realized and unrealized PnL minus fees (fees in quote or base)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.portfolio.accounting import Position, Trade, TradeSide, balance_changes
from services.portfolio.accounts import Account, AccountKind
from services.portfolio.ledger import AccountBook
from services.portfolio.marks import MarkBook
from services.portfolio.valuation import value_book

START = Decimal(10_000)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_equity_identity_over_random_fills() -> None:
    rng = random.Random(7)
    book = AccountBook(
        Account("paper", "paper", AccountKind.PAPER, "USDT", T0), balances={"USDT": START}
    )
    rounding_bound = Decimal(0)
    for n in range(500):
        symbol = rng.choice(["BTC/USDT", "ETH/USDT"])
        base = symbol.split("/")[0]
        price = Decimal(rng.randint(50, 150))
        fee_in_base = rng.random() < 0.3
        trade = Trade(
            venue="paper",
            trade_id=str(n),
            symbol=symbol,
            side=rng.choice([TradeSide.BUY, TradeSide.SELL]),
            quantity=Decimal(rng.randint(1, 300)) / 100,
            price=price,
            fee=Decimal("0.001") if fee_in_base else Decimal("0.05"),
            fee_currency=base if fee_in_base else "USDT",
            time=T0 + timedelta(seconds=n),
        )
        position = book.positions.setdefault(symbol, Position(symbol))
        position.apply(trade)
        # Each rounding of the average entry price moves the cost basis by at most
        # half a unit of its last decimal per unit held.
        rounding_bound += abs(position.quantity) * Decimal("0.5e-8")
        for asset, change in balance_changes(trade).items():
            book.balances[asset] = book.balances.get(asset, Decimal(0)) + change
        book.last_prices[symbol] = price
    marks = MarkBook()
    marks.set("paper", "BTC/USDT", Decimal("101.37"))
    value = value_book(book, marks)
    # Exact but for the average entry price, a division rounded to 8 decimal places.
    by_pnl = START + value.realized_pnl + value.unrealized_pnl - value.fees
    assert abs(value.equity - by_pnl) <= rounding_bound
    # And from the balances alone: the quote cash plus each base balance at its mark.
    by_balances = book.balances["USDT"] + book.balances["BTC"] * Decimal("101.37")
    by_balances += book.balances["ETH"] * book.last_prices["ETH/USDT"]
    assert value.equity == by_balances
