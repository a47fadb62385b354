"""Marks: the prices positions are valued at, from the exchange's tickers.

`MarkBook` keeps the latest mark per (venue, symbol); services.portfolio.ticker_feed
fills it from the exchange. Until a venue sends one, a position is marked at its last
fill price (services.portfolio.valuation).
"""

from __future__ import annotations

from decimal import Decimal


class MarkBook:
    def __init__(self) -> None:
        self._marks: dict[tuple[str, str], Decimal] = {}
        self._versions: dict[str, int] = {}

    def get(self, venue: str, symbol: str) -> Decimal | None:
        return self._marks.get((venue, symbol))

    def set(self, venue: str, symbol: str, price: Decimal) -> None:
        key = (venue, symbol)
        if self._marks.get(key) != price:
            self._marks[key] = price
            self._versions[venue] = self._versions.get(venue, 0) + 1

    def version(self, venue: str) -> int:
        """Moves whenever a mark of `venue` changes: valuations stay valid until it does."""
        return self._versions.get(venue, 0)
