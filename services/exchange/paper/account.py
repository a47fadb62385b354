"""The paper account: holdings per asset, with what resting orders hold back as `locked`.

Fees are charged in the quote currency. Locked amounts are derived from the resting
orders every time, never kept as a running figure that could drift.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from services.exchange.markets import Balance, Market
from services.exchange.orders import Side


@dataclass
class RestingOrder:
    order_id: str
    side: Side
    price: Decimal
    remaining: Decimal
    # Fills so far; numbers the next trade id.
    fill_count: int = 0


class PaperAccount:
    def __init__(self, market: Market, holdings: dict[str, Decimal]) -> None:
        self.market = market
        # What the account held before any execution: the configured starting balances.
        self.starting = dict(holdings)
        self.totals: defaultdict[str, Decimal] = defaultdict(Decimal, holdings)

    def locked(self, resting: Iterable[RestingOrder]) -> dict[str, Decimal]:
        held: defaultdict[str, Decimal] = defaultdict(Decimal)
        for order in resting:
            if order.side is Side.BUY:
                held[self.market.quote] += self.buy_reserve(order.remaining, order.price)
            else:
                held[self.market.base] += order.remaining
        return held

    def buy_reserve(self, quantity: Decimal, price: Decimal) -> Decimal:
        """Quote held back for a resting buy: its notional plus the larger fee."""
        fee_rate = max(self.market.maker_fee, self.market.taker_fee)
        return quantity * price * (1 + fee_rate)

    def free(self, asset: str, resting: Iterable[RestingOrder]) -> Decimal:
        return self.totals[asset] - self.locked(resting).get(asset, Decimal(0))

    def settle(self, side: Side, quantity: Decimal, price: Decimal, fee: Decimal) -> None:
        notional = quantity * price
        base, quote = self.market.base, self.market.quote
        if side is Side.BUY:
            self.totals[base] += quantity
            self.totals[quote] -= notional + fee
        else:
            self.totals[base] -= quantity
            self.totals[quote] += notional - fee

    def starting_balances(self) -> list[Balance]:
        """The holdings before any execution, all free (ListVenues shows them)."""
        return [Balance(asset, total, Decimal(0)) for asset, total in sorted(self.starting.items())]

    def balances(self, resting: Iterable[RestingOrder]) -> list[Balance]:
        held = self.locked(resting)
        assets = sorted(set(self.totals) | set(held))
        return [
            Balance(
                asset, self.totals[asset] - held.get(asset, Decimal(0)), held.get(asset, Decimal(0))
            )
            for asset in assets
        ]
