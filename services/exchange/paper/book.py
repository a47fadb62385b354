"""A price-level order book (sizes per level) that market data updates and taker orders eat.

Every level remembers when the venue last set it (the replay time of the depth update;
the snapshot's levels are older than any). The replayed streams only say what changed,
so a level the venue never mentions again stays, right or wrong; when the market
shows it cannot be there any more (a newer level on the other side at or through its
price, or a trade through it printed after it was last set), it is removed. So the book
is never crossed and never keeps a level that trades went through."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from decimal import Decimal

from services.exchange.orders import Side

Level = tuple[Decimal, Decimal]
# A depth update's entry: the side, the price and its new absolute size (0 removes it).
LevelChange = tuple[Side, Decimal, Decimal]
# The time of the snapshot's levels: older than any update or trade.
SNAPSHOT_TIME = -(2**63)


class OrderBook:
    """Sizes per price, and each side's prices kept sorted (bisect): a taker order or a
    ticker reads the best levels without sorting the whole book (1,000 levels a side in
    the shipped dataset) on every call."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self._bid_prices: list[Decimal] = []  # ascending: the best bid is last
        self._ask_prices: list[Decimal] = []  # ascending: the best ask is first
        # When the venue last set each level (replay milliseconds).
        self._set_at: dict[Side, dict[Decimal, int]] = {Side.BUY: {}, Side.SELL: {}}

    def clear(self) -> None:
        for container in (self.bids, self.asks, self._bid_prices, self._ask_prices):
            container.clear()
        for times in self._set_at.values():
            times.clear()

    def set_level(
        self, side: Side, price: Decimal, size: Decimal, time_ms: int = SNAPSHOT_TIME
    ) -> None:
        """Sets the absolute size at a price (the venue's depth semantics); 0 removes it.
        `time_ms`: when the venue said so; the snapshot's levels keep the default."""
        if side is Side.BUY:
            self._set(self.bids, self._bid_prices, price, size)
        else:
            self._set(self.asks, self._ask_prices, price, size)
        if size:
            self._set_at[side][price] = time_ms
        else:
            self._set_at[side].pop(price, None)

    def apply_update(self, levels: Iterable[LevelChange], time_ms: int) -> None:
        """A depth update: absolute sizes at `time_ms`; then the book is uncrossed."""
        for side, price, size in levels:
            self.set_level(side, price, size, time_ms)
        self.uncross()

    def uncross(self) -> None:
        """While the best bid is at or above the best ask, the one the venue set earlier
        is gone (the later one proves it); set at the same time, both are doubtful."""
        while self._bid_prices and self._ask_prices:
            bid, ask = self._bid_prices[-1], self._ask_prices[0]
            if bid < ask:
                return
            bid_time, ask_time = self._set_at[Side.BUY][bid], self._set_at[Side.SELL][ask]
            if bid_time <= ask_time:
                self.set_level(Side.BUY, bid, Decimal(0))
            if ask_time <= bid_time:
                self.set_level(Side.SELL, ask, Decimal(0))

    def apply_trade(self, price: Decimal, taker_side: Side, time_ms: int) -> None:
        """A trade printed at `price` at `time_ms`: at that moment no level could be better
        than it on the side it took from, nor at or through it on the taker's side. Such
        levels last set no later than the trade are removed (a later update may have put
        them back since, so those stay)."""
        if taker_side is Side.BUY:
            stale_asks = self._ask_prices[: bisect_left(self._ask_prices, price)]
            stale_bids = self._bid_prices[bisect_left(self._bid_prices, price) :]
        else:
            stale_asks = self._ask_prices[: bisect_right(self._ask_prices, price)]
            stale_bids = self._bid_prices[bisect_right(self._bid_prices, price) :]
        for side, prices in ((Side.SELL, stale_asks), (Side.BUY, stale_bids)):
            times = self._set_at[side]
            for level in prices:
                if times[level] <= time_ms:
                    self.set_level(side, level, Decimal(0))

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
        left = max(levels.get(price, Decimal(0)) - size, Decimal(0))
        # The level keeps the venue's time: only the venue's next word on it replaces it.
        self.set_level(resting, price, left, self._set_at[resting].get(price, SNAPSHOT_TIME))

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
