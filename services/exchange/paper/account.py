"""The paper account: holdings per asset, with what resting orders hold back as `locked`.

One account for all the venue's markets. Fees are charged in the quote currency. Locked
amounts are derived from the resting orders every time, never kept as a running figure
that could drift.
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
    symbol: str = ""  # empty: the venue's first market


class PaperAccount:
    def __init__(
        self,
        markets: dict[str, Market],
        holdings: dict[str, Decimal],
        fees: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0)),
    ) -> None:
        # Shared with the venue, which may add markets later (paper-live, once connected).
        self.markets = markets
        # (maker, taker) of a market not (yet) known: its symbol still names its assets.
        self._fees = fees
        # What the account held before any execution: the configured starting balances.
        self.starting = dict(holdings)
        self.totals: defaultdict[str, Decimal] = defaultdict(Decimal, holdings)

    def locked(self, resting: Iterable[RestingOrder]) -> dict[str, Decimal]:
        held: defaultdict[str, Decimal] = defaultdict(Decimal)
        for order in resting:
            market = self.market_of(order.symbol)
            if order.side is Side.BUY:
                held[market.quote] += self.buy_reserve(market, order.remaining, order.price)
            else:
                held[market.base] += order.remaining
        return held

    def market_of(self, symbol: str) -> Market:
        """The market of a resting order or execution; "" is the venue's first market."""
        if not symbol:
            return next(iter(self.markets.values()))
        market = self.markets.get(symbol)
        if market is None:
            base, _, quote = symbol.partition("/")
            maker, taker = self._fees
            return Market(
                symbol, base, quote, Decimal(0), Decimal(0), None, None, None, maker, taker
            )
        return market

    @staticmethod
    def buy_reserve(market: Market, quantity: Decimal, price: Decimal) -> Decimal:
        """Quote held back for a resting buy: its notional plus the larger fee."""
        fee_rate = max(market.maker_fee, market.taker_fee)
        return quantity * price * (1 + fee_rate)

    def free(self, asset: str, resting: Iterable[RestingOrder]) -> Decimal:
        return self.totals[asset] - self.locked(resting).get(asset, Decimal(0))

    def settle(
        self, symbol: str, side: Side, quantity: Decimal, price: Decimal, fee: Decimal
    ) -> None:
        notional = quantity * price
        market = self.market_of(symbol)
        base, quote = market.base, market.quote
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
