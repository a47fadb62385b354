"""The ledger: fills in, positions and balances out, one transaction per batch.

The portfolio process is the ledger's only writer. It keeps every account's positions
and balances in memory (a few hundred rows at most) so reads never wait for the
database, and persists each batch of fills, the positions and balances they change
and the stream cursor in ONE transaction. In-memory state changes only once that
transaction committed: work is done on copies, swapped in after the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from common.fanout import Fanout
from services.portfolio.accounting import (
    ZERO,
    AverageCost,
    Position,
    RoundTrip,
    Trade,
    balance_changes,
    quantize_price,
)
from services.portfolio.accounts import Account, AccountKind, Opening, Transfer
from services.portfolio.settings import LedgerSettings
from services.portfolio.storage.repository import (
    DuplicateFill,
    LedgerTransaction,
    PortfolioRepository,
)

# The cursor of ExchangeService.StreamExecutions.
EXECUTIONS_SOURCE = "exchange.executions"

# Position changes per subscriber held before a StreamPositions client that falls
# behind is cut (STREAM_OVERFLOW): an ingestion batch changes one per symbol traded.
POSITION_QUEUE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class PositionChange:
    """A position as a commit left it (a commit replaces Position objects, never mutates)."""

    account_id: str
    position: Position


@dataclass(slots=True)
class AccountBook:
    """One account's positions, balances and marks: the ledger's state of it."""

    account: Account
    positions: dict[str, Position] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)
    # The last fill price per symbol: the mark until the exchange gives a better one.
    last_prices: dict[str, Decimal] = field(default_factory=dict)
    # (quantity, price) of each position the account opened with (see open_account).
    openings: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    # Moves on each commit that changes this account (and never back, even for a book
    # replaced): answers built from the account stay valid while it stays the same.
    version: int = 0
    # Deposits minus withdrawals booked (transfer_watch.py), valued in the quote currency.
    net_transfers: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    duplicates: int


@dataclass(slots=True)
class _Batch:
    """The copies a batch works on, written and swapped in on commit."""

    new_books: dict[str, AccountBook] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    balances: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    last_prices: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    fills: list[tuple[str, Trade]] = field(default_factory=list)
    round_trips: list[tuple[str, RoundTrip]] = field(default_factory=list)

    def accounts(self) -> set[str]:
        """The accounts this batch changes."""
        changed = set(self.new_books) | set(self.balances)
        changed.update(account_id for account_id, _symbol in self.positions)
        changed.update(account_id for account_id, _symbol in self.last_prices)
        return changed


class Ledger:
    def __init__(
        self,
        repository: PortfolioRepository,
        settings: LedgerSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._repository = repository
        self._settings = settings
        self._clock = clock
        self._lock = asyncio.Lock()
        # Every position a commit changed, to StreamPositions subscribers.
        self.position_changes: Fanout[PositionChange] = Fanout(
            "positions", "read ListPositions", queue_size=POSITION_QUEUE_SIZE
        )
        self.books: dict[str, AccountBook] = {}
        # The last execution sequence applied; None until one is.
        self.cursor: int | None = None
        # The last AccountBook.version given out.
        self._version = 0

    # -- reading -------------------------------------------------------------------

    @property
    def quote_currency(self) -> str:
        return self._settings.quote_currency

    def book(self, account_id: str) -> AccountBook | None:
        return self.books.get(account_id)

    async def load(self) -> None:
        """Reads the accounts, positions, balances and cursor from the database."""
        stored = await self._repository.load_ledger()
        for account_id, account in stored.accounts.items():
            self.books[account_id] = AccountBook(
                account.account,
                positions=account.positions,
                balances=account.balances,
                last_prices=account.last_prices,
                openings=account.openings,
                net_transfers=account.net_transfers,
            )
        self.cursor = stored.cursors.get(EXECUTIONS_SOURCE)

    # -- writing -------------------------------------------------------------------

    async def apply(
        self,
        trades: Sequence[Trade],
        *,
        account_id: str | None = None,
        cursor: int | None = None,
        duplicates_expected: bool = True,
    ) -> Applied:
        """Appends the fills not yet in the ledger and applies them, in order; moves the
        executions cursor to `cursor` in the same transaction. Fills already there (same
        venue and trade id) are left as they were. `account_id` defaults to each fill's
        venue.

        With `duplicates_expected` false (a stream past its cursor), the batch is written
        without looking its trade ids up first: the unique key is the guard, and only if
        it fires is the batch redone with the look-up.
        """
        async with self._lock:
            try:
                batch, applied = await self._commit(
                    trades, account_id, cursor, look_up=duplicates_expected
                )
            except DuplicateFill:
                if duplicates_expected:
                    raise
                batch, applied = await self._commit(trades, account_id, cursor, look_up=True)
        self._publish(batch)
        return Applied(applied=applied, duplicates=len(trades) - applied)

    async def open_account(self, opening: Opening) -> bool:
        """Opens the venue's account from what the venue holds, unless it is open already:
        its balances are the holdings, each position the mark at opening, and the venue's
        executions up to `opening.sequence` are left out as already counted. An account
        exists before its first fill: risk reads it to price the first order.
        Returns whether it opened one."""
        async with self._lock:
            if opening.venue in self.books:
                return False
            quote = self._settings.quote_currency
            account = Account(
                opening.venue,
                opening.venue,
                opening.kind,
                quote,
                self._clock(),
                opening.sequence,
                opening.holdings_text,
            )
            book = AccountBook(account)
            batch = _Batch()
            batch.new_books[opening.venue] = book
            batch.balances[opening.venue] = dict(opening.holdings)
            for held in opening.positions:
                mark = quantize_price(held.mark)
                book.openings[held.symbol] = (held.quantity, mark)
                position = Position(
                    held.symbol,
                    AverageCost(held.quantity, mark),
                    open_time=account.create_time,
                    update_time=account.create_time,
                )
                batch.positions[(opening.venue, held.symbol)] = position
                batch.last_prices[(opening.venue, held.symbol)] = mark
            async with self._repository.transaction() as transaction:
                await self._write(transaction, batch, None)
                await transaction.add_openings(opening.venue, book.openings)
            self._swap_in(batch, None)
        self._publish(batch)
        return True

    async def book_transfers(
        self, account_id: str, amounts: dict[str, Decimal], as_of_sequence: int
    ) -> list[Transfer]:
        """Books deposits (> 0) and withdrawals (< 0) found at the venue, in one
        transaction: each asset's balance moves by its amount. The quote currency is
        cash (valued at par, counted in `net_transfers`); another asset is booked as a
        balance only, unvalued, as an asset no position holds (see valuation.py)."""
        async with self._lock:
            book = self.books[account_id]
            quote = book.account.quote_currency
            now = self._clock()
            transfers = [
                Transfer(
                    account_id,
                    asset,
                    amount,
                    amount if asset == quote else None,
                    now,
                    as_of_sequence=as_of_sequence,
                )
                for asset, amount in sorted(amounts.items())
                if amount
            ]
            if not transfers:
                return []
            batch = _Batch()
            balances = batch.balances[account_id] = dict(book.balances)
            for transfer in transfers:
                balances[transfer.asset] = balances.get(transfer.asset, ZERO) + transfer.amount
            async with self._repository.transaction() as transaction:
                await self._write(transaction, batch, None)
                await transaction.add_transfers(transfers)
            book.net_transfers += sum((t.value for t in transfers if t.value is not None), ZERO)
            self._swap_in(batch, None)
        return transfers

    async def _commit(
        self, trades: Sequence[Trade], account_id: str | None, cursor: int | None, look_up: bool
    ) -> tuple[_Batch, int]:
        batch = _Batch()
        async with self._repository.transaction() as transaction:
            new_trades = await _unseen(transaction, trades) if look_up else _distinct(trades)
            for trade in new_trades:
                self._apply_one(batch, account_id or trade.venue, trade)
            await self._write(transaction, batch, cursor)
        self._swap_in(batch, cursor)
        return batch, len(new_trades)

    def _book_for(self, batch: _Batch, account_id: str, venue: str) -> AccountBook:
        book = self.books.get(account_id) or batch.new_books.get(account_id)
        if book is None:
            # Venue accounts are opened from the venue (open_account) before their
            # fills; only fills imported into an account no venue has get here. Such
            # fills are real trades made elsewhere: LIVE, starting from nothing.
            quote = self._settings.quote_currency
            account = Account(account_id, venue, AccountKind.LIVE, quote, self._clock())
            book = batch.new_books[account_id] = AccountBook(account)
        return book

    def _apply_one(self, batch: _Batch, account_id: str, trade: Trade) -> None:
        book = self._book_for(batch, account_id, trade.venue)
        key = (account_id, trade.symbol)
        position = batch.positions.get(key)
        if position is None:
            current = book.positions.get(trade.symbol)
            position = current.copy() if current else Position(trade.symbol, AverageCost())
            batch.positions[key] = position
        round_trip = position.apply(trade)
        balances = batch.balances.get(account_id)
        if balances is None:
            balances = batch.balances[account_id] = dict(book.balances)
        for asset, change in balance_changes(trade).items():
            balances[asset] = balances.get(asset, ZERO) + change
        batch.last_prices[key] = trade.price
        batch.fills.append((account_id, trade))
        if round_trip is not None:
            batch.round_trips.append((account_id, round_trip))

    async def _write(
        self, transaction: LedgerTransaction, batch: _Batch, cursor: int | None
    ) -> None:
        await transaction.add_accounts(book.account for book in batch.new_books.values())
        await transaction.add_fills(batch.fills)
        await transaction.add_round_trips(batch.round_trips)
        await transaction.save_positions(batch.positions)
        await transaction.save_balances(batch.balances)
        if cursor is not None and cursor != self.cursor:
            await transaction.save_cursor(EXECUTIONS_SOURCE, cursor, stored=self.cursor is not None)

    def _swap_in(self, batch: _Batch, cursor: int | None) -> None:
        self.books.update(batch.new_books)
        for (account_id, symbol), position in batch.positions.items():
            self.books[account_id].positions[symbol] = position
        for account_id, totals in batch.balances.items():
            self.books[account_id].balances = totals
        for (account_id, symbol), price in batch.last_prices.items():
            self.books[account_id].last_prices[symbol] = price
        self._version += 1
        for account_id in batch.accounts():
            self.books[account_id].version = self._version
        if cursor is not None:
            self.cursor = cursor

    def _publish(self, batch: _Batch) -> None:
        for (account_id, _symbol), position in batch.positions.items():
            self.position_changes.publish(PositionChange(account_id, position))


def _distinct(trades: Sequence[Trade]) -> list[Trade]:
    """The trades without a second copy of the same (venue, trade id)."""
    seen: set[tuple[str, str]] = set()
    distinct = []
    for trade in trades:
        key = (trade.venue, trade.trade_id)
        if key not in seen:
            seen.add(key)
            distinct.append(trade)
    return distinct


async def _unseen(transaction: LedgerTransaction, trades: Sequence[Trade]) -> list[Trade]:
    """The trades not in the ledger yet, without a second copy of any."""
    known = await transaction.known_trades(trades)
    unseen = []
    for trade in trades:
        key = (trade.venue, trade.trade_id)
        if key not in known:
            known.add(key)  # a second copy in the same batch is a duplicate too
            unseen.append(trade)
    return unseen
