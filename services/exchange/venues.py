"""The configured venues by name: the paper venue, and any ccxt venues."""

from __future__ import annotations

from collections.abc import Iterator

from common.errors import NotFound
from services.exchange.reasons import Reason
from services.exchange.venue import Venue


class Venues:
    def __init__(self, venues: list[Venue]) -> None:
        self._venues = {venue.info.name: venue for venue in venues}

    def __iter__(self) -> Iterator[Venue]:
        return iter(self._venues.values())

    def get(self, name: str) -> Venue | None:
        return self._venues.get(name)

    def require(self, name: str) -> Venue:
        venue = self._venues.get(name)
        if venue is None:
            known = ", ".join(sorted(self._venues))
            raise NotFound(
                f"unknown venue {name[:40]!r}; configured: {known}", reason=Reason.UNKNOWN_VENUE
            )
        return venue
