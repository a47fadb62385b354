"""Stress tests: the PnL of the current positions under relative price shocks.

A shock targets a symbol ("BTC/USDT") or a base asset ("BTC", every symbol of it); a
symbol's own shock wins over its asset's. Prices move from the mark; amounts stay
exact (Decimal).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from common.errors import FailedPrecondition
from services.risk.reasons import Reason
from services.risk.risk_book import ZERO, RiskBook


@dataclass(frozen=True)
class PriceShock:
    target: str
    # Relative move: Decimal("-0.2") is a 20% fall.
    change: Decimal


@dataclass(frozen=True)
class StressResult:
    symbol: str
    quantity: Decimal
    mark_price: Decimal
    shocked_price: Decimal
    pnl: Decimal


def run_stress_test(book: RiskBook, shocks: list[PriceShock]) -> list[StressResult]:
    """One result per open position, in symbol order; unshocked positions show 0 PnL."""
    by_target = {shock.target: shock.change for shock in shocks}
    results = []
    for symbol, position in sorted(book.positions.items()):
        if not position.quantity:
            continue
        mark = book.mark(symbol)
        if mark is None:
            raise FailedPrecondition(
                f"no mark price for {symbol}: wait for the exchange's ticker and retry",
                reason=Reason.RISK_NO_MARK_PRICE,
            )
        change = by_target.get(symbol, by_target.get(_base(book, symbol), ZERO))
        shocked = mark * (1 + change)
        results.append(
            StressResult(
                symbol, position.quantity, mark, shocked, position.quantity * (shocked - mark)
            )
        )
    return results


def _base(book: RiskBook, symbol: str) -> str:
    market = book.markets.get(symbol)
    return market.base if market is not None else symbol.partition("/")[0]
