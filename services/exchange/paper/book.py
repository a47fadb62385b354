"""A price-level order book (sizes per level) that market data updates and taker orders eat."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from decimal import Decimal

from services.exchange.orders import Side

Level = tuple[Decimal, Decimal]


class OrderBook:
    """Sizes per price, and each side's prices kept sorted (bisect): a taker order or a
    ticker reads the best levels without sorting the whole book (1,000 levels a side in
    the shipped dataset) on every call."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self._bid_prices: list[Decimal] = []  # ascending: the best bid is last
        self._ask_prices: list[Decimal] = []  # ascending: the best ask is first

    def clear(self) -> None:
        for container in (self.bids, self.asks, self._bid_prices, self._ask_prices):
            container.clear()

    def set_level(self, side: Side, price: Decimal, size: Decimal) -> None:
        """Sets the absolute size at a price (the venue's depth semantics); 0 removes it."""
        if side is Side.BUY:
            self._set(self.bids, self._bid_prices, price, size)
        else:
            self._set(self.asks, self._ask_prices, price, size)

    def best_bid(self) -> Level | None:
        return self._level(self.bids, self._bid_prices[-1]) if self._bid_prices else None

    def best_ask(self) -> Level | None:
        return self._level(self.asks, self._ask_prices[0]) if self._ask_prices else None

    def depth(self, depth: int) -> tuple[list[Level], list[Level]]:
        """Best first: bids descending, asks ascending."""
        bids = [(p, self.bids[p]) for p in reversed(self._bid_prices[-depth:])] if depth else []
        asks = [(p, self.asks[p]) for p in self._ask_prices[:depth]]
        return bids, asks

    def liquidity(self, taker_side: Side, limit: Decimal | None) -> Iterator[Level]:
        """Levels a taker on `taker_side` may take, best first, up to its limit price."""
        if taker_side is Side.BUY:
            end = len(self._ask_prices) if limit is None else bisect_right(self._ask_prices, limit)
            return ((p, self.asks[p]) for p in self._ask_prices[:end])
        start = 0 if limit is None else bisect_left(self._bid_prices, limit)
        return ((p, self.bids[p]) for p in reversed(self._bid_prices[start:]))

    def would_take(self, side: Side, price: Decimal) -> bool:
        """Whether a limit order at `price` would cross the book on arrival."""
        if side is Side.BUY:
            ask = self.best_ask()
            return ask is not None and price >= ask[0]
        bid = self.best_bid()
        return bid is not None and price <= bid[0]

    def consume(self, taker_side: Side, price: Decimal, size: Decimal) -> None:
        """Removes liquidity a simulated taker used, until the venue's next update of the level."""
        resting = Side.SELL if taker_side is Side.BUY else Side.BUY
        levels = self.asks if taker_side is Side.BUY else self.bids
        self.set_level(resting, price, max(levels.get(price, Decimal(0)) - size, Decimal(0)))

    @staticmethod
    def _set(
        levels: dict[Decimal, Decimal], prices: list[Decimal], price: Decimal, size: Decimal
    ) -> None:
        if size:
            if price not in levels:
                insort(prices, price)
            levels[price] = size
        elif levels.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]

    @staticmethod
    def _level(levels: dict[Decimal, Decimal], price: Decimal) -> Level:
        return price, levels[price]


def walk(levels: Iterable[Level], quantity: Decimal) -> list[Level]:
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
