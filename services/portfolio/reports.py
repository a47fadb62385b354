"""What the read RPCs answer that is more than the ledger's state: PnL by cost method,
equity history, performance, fills and transfers; and fills imported from a file.

Positions, balances and average-cost PnL come from the ledger's memory; fills, FIFO
PnL, equity history and performance from the database (storage.repository).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from common.errors import FieldViolation, InvalidArgument, NotFound
from common.memory import MemoryGuard
from services.portfolio.accounting import ZERO, CostMethod, replay
from services.portfolio.accounts import EquityPoint, Transfer
from services.portfolio.equity import downsample
from services.portfolio.ledger import AccountBook, Applied, Ledger
from services.portfolio.marks import MarkBook
from services.portfolio.reasons import Reason
from services.portfolio.storage.repository import PortfolioRepository, StoredFill
from services.portfolio.valuation import value_position

if TYPE_CHECKING:
    from services.portfolio.performance import Performance

# An import file costs about this many times its size in memory while parsed.
IMPORT_MEMORY_FACTOR = 20


@dataclass(frozen=True, slots=True)
class PnL:
    realized: Decimal = ZERO
    unrealized: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.realized + self.unrealized - self.fees

    def __add__(self, other: PnL) -> PnL:
        return PnL(
            self.realized + other.realized,
            self.unrealized + other.unrealized,
            self.fees + other.fees,
        )


@dataclass(frozen=True, slots=True)
class PnLReport:
    total: PnL
    # Per symbol, in symbol order.
    symbols: list[tuple[str, PnL]]
    quote_currency: str


class Reports:
    def __init__(
        self,
        ledger: Ledger,
        marks: MarkBook,
        repository: PortfolioRepository,
        memory: MemoryGuard,
    ) -> None:
        self.ledger = ledger
        self.marks = marks
        self.repository = repository
        self.memory = memory

    def book(self, account_id: str) -> AccountBook:
        """The account's book; NOT_FOUND (ACCOUNT_NOT_FOUND) if the ledger keeps none."""
        book = self.ledger.book(account_id)
        if book is None:
            raise NotFound(
                f"no account {account_id!r}: ListAccounts names them (one per venue)",
                reason=Reason.ACCOUNT_NOT_FOUND,
                metadata={"account_id": account_id},
            )
        return book

    async def pnl(self, book: AccountBook, method: CostMethod, symbol: str = "") -> PnLReport:
        """Realized (by `method`), unrealized (at the mark) and fees, per symbol and in
        total; one symbol's only with `symbol`."""
        positions = dict(book.positions)
        if method is CostMethod.FIFO:
            trades = await self.repository.trades_in_ledger_order(book.account.account_id, symbol)
            positions = replay(trades, CostMethod.FIFO, book.openings)
        if symbol:
            positions = {s: p for s, p in positions.items() if s == symbol}
        symbols = []
        total = PnL()
        for name, position in sorted(positions.items()):
            unrealized = value_position(book, position, self.marks).unrealized_pnl
            figures = PnL(position.realized_pnl, unrealized, position.fees)
            total += figures
            symbols.append((name, figures))
        return PnLReport(total, symbols, book.account.quote_currency)

    async def equity_history(
        self,
        book: AccountBook,
        start: datetime | None,
        end: datetime | None,
        interval: timedelta | None,
    ) -> list[EquityPoint]:
        """The equity snapshots in [start, end), the last of each `interval` if given."""
        if interval is not None and interval < timedelta(0):
            raise InvalidArgument([FieldViolation("interval", "must not be negative")])
        points = await self.repository.equity_points(book.account.account_id, start, end)
        return downsample(points, interval) if interval else points

    async def performance(
        self, book: AccountBook, start: datetime | None, end: datetime | None
    ) -> Performance:
        # Loaded by the first GetPerformance, like imports by the first ImportFills: an
        # idle portfolio does not hold them (~65 KiB of heap together).
        from services.portfolio.performance import performance  # noqa: PLC0415

        account_id = book.account.account_id
        points = await self.repository.equity_points(account_id, start, end)
        round_trips = await self.repository.round_trip_pnls(account_id, start, end)
        return performance(points, round_trips)

    async def fills(
        self,
        book: AccountBook,
        *,
        symbol: str,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> list[StoredFill]:
        """Newest first, after the (time, fill id) of the last of the previous page."""
        return await self.repository.list_fills(
            book.account.account_id, symbol=symbol, start=start, end=end, before=after, limit=limit
        )

    async def transfers(
        self, book: AccountBook, *, after: tuple[datetime, int] | None, limit: int
    ) -> list[Transfer]:
        """Newest first, after the (time, transfer id) of the last of the previous page."""
        return await self.repository.list_transfers(
            book.account.account_id, before=after, limit=limit
        )

    async def import_fills(self, account_id: str, file_format: str, content: str) -> Applied:
        """Parses a file of fills (imports.PARSERS names the formats) into the account;
        fills already in the ledger are counted as duplicates."""
        from services.portfolio.imports import PARSERS  # noqa: PLC0415 - see performance

        parse = PARSERS[file_format]
        self.memory.admit("ImportFills", len(content) * IMPORT_MEMORY_FACTOR)
        book = self.ledger.book(account_id)
        venue = book.account.venue if book else account_id
        trades = parse(content, venue)
        trades.sort(key=lambda trade: trade.time)  # the ledger applies fills in time order
        return await self.ledger.apply(trades, account_id=account_id)
