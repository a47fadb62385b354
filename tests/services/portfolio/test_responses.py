"""Kept answers: reused while the account and its venue's marks are unchanged, built
again as soon as either moved, and never more than the bound."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from edgequant.portfolio.v1 import portfolio_pb2 as pb
from services.portfolio.accounts import Account, AccountKind
from services.portfolio.ledger import AccountBook
from services.portfolio.marks import MarkBook
from services.portfolio.responses import ResponseCache


def _book(account_id: str = "paper") -> AccountBook:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return AccountBook(Account(account_id, account_id, AccountKind.PAPER, "USDT", created))


class _Builder:
    """Builds a distinct message each time, and counts the builds."""

    def __init__(self) -> None:
        self.builds = 0

    def __call__(self) -> pb.Portfolio:
        self.builds += 1
        return pb.Portfolio(account_id="paper", equity=str(self.builds))


def test_an_unchanged_account_gets_the_same_answer() -> None:
    cache: ResponseCache[pb.Portfolio] = ResponseCache(MarkBook())
    book, build = _book(), _Builder()
    first = cache.get(book, "paper", build)
    assert cache.get(book, "paper", build) is first
    assert build.builds == 1


def test_a_commit_to_the_account_builds_it_again() -> None:
    cache: ResponseCache[pb.Portfolio] = ResponseCache(MarkBook())
    book, build = _book(), _Builder()
    cache.get(book, "paper", build)
    book.version += 1  # what Ledger does on a commit that changes the account
    assert cache.get(book, "paper", build).equity == "2"


def test_a_new_mark_of_its_venue_builds_it_again() -> None:
    marks = MarkBook()
    cache: ResponseCache[pb.Portfolio] = ResponseCache(marks)
    book, build = _book(), _Builder()
    cache.get(book, "paper", build)
    marks.set("binance-live", "BTC/USDT", Decimal(100))  # another venue: still valid
    assert cache.get(book, "paper", build).equity == "1"
    marks.set("paper", "BTC/USDT", Decimal(100))
    assert cache.get(book, "paper", build).equity == "2"


def test_keys_are_kept_apart_and_bounded() -> None:
    cache: ResponseCache[pb.Portfolio] = ResponseCache(MarkBook(), max_entries=2)
    book, build = _book(), _Builder()
    first = cache.get(book, ("paper", 1), build)
    second = cache.get(book, ("paper", 2), build)
    assert first is not second
    cache.get(book, ("paper", 3), build)  # the oldest, ("paper", 1), makes room
    assert cache.get(book, ("paper", 2), build) is second
    assert cache.get(book, ("paper", 1), build) is not first
    assert build.builds == 4
