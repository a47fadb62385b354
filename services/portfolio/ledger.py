"""The ledger: fills in, positions and balances out, one transaction per batch.

The portfolio process is the ledger's only writer. It keeps every account's positions
and balances in memory (a few hundred rows at most) so reads never wait for the
database, and persists each batch of fills, the positions and balances they change
and the stream cursor in ONE transaction. In-memory state changes only once that
transaction committed: work is done on copies, swapped in after the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.portfolio.accounting import (
    ZERO,
    AverageCost,
    Position,
    RoundTrip,
    Trade,
    balance_changes,
    quantize_price,
)
from services.portfolio.accounts import Account, AccountKind, Opening
from services.portfolio.settings import LedgerSettings
from services.portfolio.storage.models import (
    AccountRow,
    BalanceRow,
    CursorRow,
    FillRow,
    OpeningPositionRow,
    PositionRow,
    RoundTripRow,
    TransferRow,
)

# The cursor of ExchangeService.StreamExecutions.
EXECUTIONS_SOURCE = "exchange.executions"
# SQLite allows 32766 bound parameters; stay far below for the IN lists.
_IN_CHUNK = 2000

PositionListener = Callable[[str, list[Position]], None]


@dataclass(slots=True)
class Book:
    """One account's state."""

    account: Account
    positions: dict[str, Position] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)
    # The last fill price per symbol: the mark until the exchange gives a better one.
    last_prices: dict[str, Decimal] = field(default_factory=dict)
    # (quantity, price) of each position the account opened with (see open_account).
    openings: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    # Moves on each commit that changes this account (and never back, even for a Book
    # replaced): answers built from the account stay valid while it stays the same.
    version: int = 0
    # Deposits minus withdrawals booked (transfers.py), valued in the quote currency.
    net_transfers: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Transfer:
    """A deposit (amount > 0) or withdrawal (< 0) booked from the venue's balances."""

    account_id: str
    asset: str
    amount: Decimal
    # In the quote currency; None for an asset booked as a balance only.
    value: Decimal | None
    time: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    duplicates: int


@dataclass(slots=True)
class _Batch:
    """The copies a batch works on, written and swapped in on commit."""

    new_books: dict[str, Book] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    balances: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    last_prices: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    round_trips: list[dict[str, Any]] = field(default_factory=list)

    def accounts(self) -> set[str]:
        """The accounts this batch changes."""
        changed = set(self.new_books) | set(self.balances)
        changed.update(account_id for account_id, _symbol in self.positions)
        changed.update(account_id for account_id, _symbol in self.last_prices)
        return changed


class Ledger:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: LedgerSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock
        self._lock = asyncio.Lock()
        self._listeners: list[PositionListener] = []
        self._persisted_positions: set[tuple[str, str]] = set()
        self._persisted_balances: set[tuple[str, str]] = set()
        self.books: dict[str, Book] = {}
        # The last execution sequence applied; None until one is.
        self.cursor: int | None = None
        # The last Book.version given out.
        self._version = 0

    # -- reading -------------------------------------------------------------------

    @property
    def quote_currency(self) -> str:
        return self._settings.quote_currency

    def book(self, account_id: str) -> Book | None:
        return self.books.get(account_id)

    def subscribe(self, listener: PositionListener) -> Callable[[], None]:
        """Calls `listener(account_id, changed positions)` after each commit."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def load(self) -> None:
        """Reads the accounts, positions, balances and cursor from the database."""
        async with self._sessions() as session:
            for row in (await session.scalars(select(AccountRow))).all():
                account = Account(
                    row.account_id,
                    row.venue,
                    AccountKind(row.kind),
                    row.quote_currency,
                    row.create_time,
                    row.opening_sequence,
                    row.opening_holdings,
                )
                self.books[account.account_id] = Book(account)
            for position_row in (await session.scalars(select(PositionRow))).all():
                self.books[position_row.account_id].positions[position_row.symbol] = _position(
                    position_row
                )
                self._persisted_positions.add((position_row.account_id, position_row.symbol))
            for opening in (await session.scalars(select(OpeningPositionRow))).all():
                self.books[opening.account_id].openings[opening.symbol] = (
                    opening.quantity,
                    opening.price,
                )
            for balance in (await session.scalars(select(BalanceRow))).all():
                self.books[balance.account_id].balances[balance.asset] = balance.total
                self._persisted_balances.add((balance.account_id, balance.asset))
            last_fills = select(func.max(FillRow.id)).group_by(FillRow.account_id, FillRow.symbol)
            for account_id, symbol, price in await session.execute(
                select(FillRow.account_id, FillRow.symbol, FillRow.price).where(
                    FillRow.id.in_(last_fills)
                )
            ):
                self.books[account_id].last_prices[symbol] = price
            self.cursor = await session.scalar(
                select(CursorRow.sequence).where(CursorRow.source == EXECUTIONS_SOURCE)
            )
            for account_id, value in await session.execute(
                select(TransferRow.account_id, TransferRow.value).where(
                    TransferRow.value.is_not(None)
                )
            ):
                if value is not None:
                    self.books[account_id].net_transfers += value

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
            except IntegrityError:
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
            book = Book(account)
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
            async with self._sessions.begin() as session:
                await self._write(session, batch, None)
                if book.openings:
                    await session.execute(
                        insert(OpeningPositionRow),
                        [
                            {"account_id": opening.venue, "symbol": s, "quantity": q, "price": p}
                            for s, (q, p) in book.openings.items()
                        ],
                    )
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
                Transfer(account_id, asset, amount, amount if asset == quote else None, now)
                for asset, amount in sorted(amounts.items())
                if amount
            ]
            if not transfers:
                return []
            batch = _Batch()
            balances = batch.balances[account_id] = dict(book.balances)
            for transfer in transfers:
                balances[transfer.asset] = balances.get(transfer.asset, ZERO) + transfer.amount
            async with self._sessions.begin() as session:
                await self._write(session, batch, None)
                await session.execute(
                    insert(TransferRow),
                    [
                        {
                            "account_id": t.account_id,
                            "asset": t.asset,
                            "amount": t.amount,
                            "value": t.value,
                            "time": t.time,
                            "as_of_sequence": as_of_sequence,
                        }
                        for t in transfers
                    ],
                )
            book.net_transfers += sum((t.value for t in transfers if t.value is not None), ZERO)
            self._swap_in(batch, None)
        return transfers

    async def _commit(
        self, trades: Sequence[Trade], account_id: str | None, cursor: int | None, look_up: bool
    ) -> tuple[_Batch, int]:
        batch = _Batch()
        async with self._sessions.begin() as session:
            new_trades = await self._unseen(session, trades) if look_up else _distinct(trades)
            for trade in new_trades:
                self._apply_one(batch, account_id or trade.venue, trade)
            await self._write(session, batch, cursor)
        self._swap_in(batch, cursor)
        return batch, len(new_trades)

    async def _unseen(self, session: AsyncSession, trades: Sequence[Trade]) -> list[Trade]:
        by_venue: dict[str, set[str]] = {}
        for trade in trades:
            by_venue.setdefault(trade.venue, set()).add(trade.trade_id)
        known: set[tuple[str, str]] = set()
        for venue, ids in by_venue.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), _IN_CHUNK):
                chunk = ordered[start : start + _IN_CHUNK]
                rows = await session.scalars(
                    select(FillRow.trade_id).where(
                        FillRow.venue == venue, FillRow.trade_id.in_(chunk)
                    )
                )
                known.update((venue, trade_id) for trade_id in rows)
        unseen = []
        for trade in trades:
            key = (trade.venue, trade.trade_id)
            if key not in known:
                known.add(key)  # a second copy in the same batch is a duplicate too
                unseen.append(trade)
        return unseen

    def _book_for(self, batch: _Batch, account_id: str, venue: str) -> Book:
        book = self.books.get(account_id) or batch.new_books.get(account_id)
        if book is None:
            # Venue accounts are opened from the venue (open_account) before their
            # fills; only fills imported into an account no venue has get here. Such
            # fills are real trades made elsewhere: LIVE, starting from nothing.
            quote = self._settings.quote_currency
            account = Account(account_id, venue, AccountKind.LIVE, quote, self._clock())
            book = batch.new_books[account_id] = Book(account)
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
        batch.fills.append(_fill_row(account_id, trade))
        if round_trip is not None:
            batch.round_trips.append(_round_trip_row(account_id, round_trip))

    async def _write(self, session: AsyncSession, batch: _Batch, cursor: int | None) -> None:
        if batch.new_books:
            await session.execute(
                insert(AccountRow),
                [
                    {
                        "account_id": book.account.account_id,
                        "venue": book.account.venue,
                        "kind": book.account.kind.value,
                        "quote_currency": book.account.quote_currency,
                        "create_time": book.account.create_time,
                        "opening_sequence": book.account.opening_sequence,
                        "opening_holdings": book.account.opening_holdings,
                    }
                    for book in batch.new_books.values()
                ],
            )
        if batch.fills:
            # Core executemany: the ORM's per-row bookkeeping is not needed for appends.
            await session.execute(insert(cast(Table, FillRow.__table__)), batch.fills)
        if batch.round_trips:
            await session.execute(insert(RoundTripRow), batch.round_trips)
        positions = [_position_row(key, p) for key, p in batch.positions.items()]
        await _upsert(session, PositionRow, positions, self._persisted_positions, "symbol")
        balances = [
            {"account_id": account_id, "asset": asset, "total": total}
            for account_id, totals in batch.balances.items()
            for asset, total in totals.items()
        ]
        await _upsert(session, BalanceRow, balances, self._persisted_balances, "asset")
        if cursor is not None and cursor != self.cursor:
            if self.cursor is None:
                await session.execute(
                    insert(CursorRow), [{"source": EXECUTIONS_SOURCE, "sequence": cursor}]
                )
            else:
                await session.execute(
                    update(CursorRow)
                    .where(CursorRow.source == EXECUTIONS_SOURCE)
                    .values(sequence=cursor)
                )

    def _swap_in(self, batch: _Batch, cursor: int | None) -> None:
        self.books.update(batch.new_books)
        for (account_id, symbol), position in batch.positions.items():
            self.books[account_id].positions[symbol] = position
            self._persisted_positions.add((account_id, symbol))
        for account_id, totals in batch.balances.items():
            self.books[account_id].balances = totals
            self._persisted_balances.update((account_id, asset) for asset in totals)
        for (account_id, symbol), price in batch.last_prices.items():
            self.books[account_id].last_prices[symbol] = price
        self._version += 1
        for account_id in batch.accounts():
            self.books[account_id].version = self._version
        if cursor is not None:
            self.cursor = cursor

    def _publish(self, batch: _Batch) -> None:
        if not batch.positions or not self._listeners:
            return
        by_account: dict[str, list[Position]] = {}
        for (account_id, _symbol), position in batch.positions.items():
            by_account.setdefault(account_id, []).append(position)
        for account_id, positions in by_account.items():
            for listener in list(self._listeners):
                listener(account_id, positions)


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


async def _upsert(
    session: AsyncSession,
    model: type[PositionRow] | type[BalanceRow],
    rows: Iterable[dict[str, Any]],
    persisted: set[tuple[str, str]],
    key: str,
) -> None:
    """Core executemany: UPDATE of the rows already stored, INSERT of the others (the
    ledger knows which, being the only writer: no dialect-specific upsert needed)."""
    table = cast(Table, model.__table__)
    existing: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for row in rows:
        if (row["account_id"], row[key]) in persisted:
            existing.append({**row, "key_account_id": row["account_id"], "key_item": row[key]})
        else:
            new.append(row)
    if existing:
        values: dict[str, Any] = {
            name: bindparam(name) for name in existing[0] if not name.startswith("key_")
        }
        del values["account_id"], values[key]
        statement = (
            table.update()
            .where(table.c.account_id == bindparam("key_account_id"))
            .where(table.c[key] == bindparam("key_item"))
            .values(values)
        )
        await session.execute(statement, existing)
    if new:
        await session.execute(insert(table), new)


def _fill_row(account_id: str, trade: Trade) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "venue": trade.venue,
        "trade_id": trade.trade_id,
        "order_id": trade.order_id,
        "client_order_id": trade.client_order_id,
        "symbol": trade.symbol,
        "side": trade.side.value,
        "quantity": trade.quantity,
        "price": trade.price,
        "fee": trade.fee,
        "fee_currency": trade.fee_currency,
        "liquidity": trade.liquidity,
        "time": trade.time,
        "sequence": trade.sequence,
    }


def _round_trip_row(account_id: str, round_trip: RoundTrip) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "symbol": round_trip.symbol,
        "open_time": round_trip.open_time,
        "close_time": round_trip.close_time,
        "pnl": round_trip.pnl,
    }


def _position_row(key: tuple[str, str], position: Position) -> dict[str, Any]:
    return {
        "account_id": key[0],
        "symbol": key[1],
        "quantity": position.quantity,
        "average_price": position.average_price,
        "realized_pnl": position.realized_pnl,
        "fees": position.fees,
        "update_time": position.update_time,
        "open_pnl": position.open_pnl,
        "open_time": position.open_time,
    }


def _position(row: PositionRow) -> Position:
    return Position(
        symbol=row.symbol,
        basis=AverageCost(row.quantity, row.average_price),
        realized_pnl=row.realized_pnl,
        fees=row.fees,
        open_pnl=row.open_pnl,
        open_time=row.open_time,
        update_time=row.update_time,
    )
