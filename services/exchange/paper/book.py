"""A price-level order book (sizes per level) that market data updates and taker orders eat."""

from __future__ import annotations

from decimal import Decimal

from services.exchange.orders import Side

Level = tuple[Decimal, Decimal]


class OrderBook:
    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def set_level(self, side: Side, price: Decimal, size: Decimal) -> None:
        """Sets the absolute size at a price (the venue's depth semantics); 0 removes it."""
        levels = self.bids if side is Side.BUY else self.asks
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)

    def best_bid(self) -> Level | None:
        return max(self.bids.items(), default=None)

    def best_ask(self) -> Level | None:
        return min(self.asks.items(), default=None)

    def depth(self, depth: int) -> tuple[list[Level], list[Level]]:
        """Best first: bids descending, asks ascending."""
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return bids, asks

    def liquidity(self, taker_side: Side, limit: Decimal | None) -> list[Level]:
        """Levels a taker on `taker_side` may take, best first, up to its limit price."""
        if taker_side is Side.BUY:
            levels = sorted(self.asks.items())
            return [lv for lv in levels if limit is None or lv[0] <= limit]
        levels = sorted(self.bids.items(), reverse=True)
        return [lv for lv in levels if limit is None or lv[0] >= limit]

    def would_take(self, side: Side, price: Decimal) -> bool:
        """Whether a limit order at `price` would cross the book on arrival."""
        if side is Side.BUY:
            ask = self.best_ask()
            return ask is not None and price >= ask[0]
        bid = self.best_bid()
        return bid is not None and price <= bid[0]

    def consume(self, taker_side: Side, price: Decimal, size: Decimal) -> None:
        """Removes liquidity a simulated taker used, until the venue's next update of the level."""
        levels = self.asks if taker_side is Side.BUY else self.bids
        left = levels.get(price, Decimal(0)) - size
        if left > 0:
            levels[price] = left
        else:
            levels.pop(price, None)


def walk(levels: list[Level], quantity: Decimal) -> list[Level]:
    """The (price, size) slices a taker of `quantity` gets from `levels`, best first.
    Fewer than `quantity` in total when the book is thinner than the order."""
    slices: list[Level] = []
    left = quantity
    for price, size in levels:
        if left <= 0:
            break
        take = min(size, left)
        slices.append((price, take))
        left -= take
    return slices
