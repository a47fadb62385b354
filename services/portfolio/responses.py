"""Built answers of the read RPCs, kept while what they were built from is unchanged.

ListPositions and GetPortfolio are asked far more often than an account changes, and
building them (100 positions marked to market, every amount formatted as a decimal
string) costs more than the rest of the call. An answer is kept with the stamp of
what it was built from: the account's `AccountBook.version` (every commit that changes the
account moves it) and its venue's `MarkBook.version` (every new mark moves it). A
stamp that moved means the answer is built again; nothing has to be told to forget.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from google.protobuf.message import Message

from services.portfolio.ledger import AccountBook
from services.portfolio.marks import MarkBook

Built = TypeVar("Built", bound=Message)

# Answers kept at most; page tokens are the caller's, so the keys are not bounded.
MAX_ENTRIES = 64

Stamp = tuple[int, int]


class ResponseCache(Generic[Built]):
    """Answers of one kind, by key. A kept message is shared by every caller that gets
    it: callers must not change it (copy it first)."""

    def __init__(self, marks: MarkBook, max_entries: int = MAX_ENTRIES) -> None:
        self._marks = marks
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[Stamp, Built]] = {}

    def get(self, book: AccountBook, key: Hashable, build: Callable[[], Built]) -> Built:
        """The answer kept for `key` if `book` and its marks are unchanged since it was
        built; else `build()`, kept."""
        stamp = (book.version, self._marks.version(book.account.venue))
        entry = self._entries.get(key)
        if entry is not None and entry[0] == stamp:
            return entry[1]
        built = build()
        self._entries.pop(key, None)
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest entry
        self._entries[key] = (stamp, built)
        return built
