"""Reads and writes of the portfolio tables, in domain objects.

The ledger is the only writer: it writes each batch in one `LedgerTransaction`, which
knows (being the only writer's) which position and balance rows exist already, so an
upsert is a plain UPDATE or INSERT on any dialect. Reads for the RPCs that go to the
database (fills, transfers, equity snapshots, round trips) answer domain objects.

Every write goes through common.writer (on SQLite one synchronous transaction on the
loop): a batch of executions is ~5 statements, and through aiosqlite each is several
hops to its thread and back, which was most of the portfolio's CPU per order. A
`LedgerTransaction` collects its statements and runs them in one go as it closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Executable,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common.writer import Writer
from services.portfolio.accounting import (
    ZERO,
    AverageCost,
    Position,
    RoundTrip,
    Trade,
    TradeSide,
)
from services.portfolio.accounts import Account, AccountKind, EquityPoint, Transfer
from services.portfolio.storage.models import (
    AccountRow,
    BalanceRow,
    CursorRow,
    EquitySnapshotRow,
    FillRow,
    OpeningPositionRow,
    PositionRow,
    RoundTripRow,
    TransferRow,
)

# A batch's fill that repeats one already stored (same venue and trade id).
DuplicateFill = IntegrityError
# SQLite allows 32766 bound parameters; stay far below for the IN lists.
_IN_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class StoredFill:
    """A fill as stored: its row id orders the fills an account received at one time."""

    fill_id: int
    account_id: str
    trade: Trade


@dataclass(slots=True)
class StoredAccount:
    """One account as the ledger left it."""

    account: Account
    positions: dict[str, Position] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)
    last_prices: dict[str, Decimal] = field(default_factory=dict)
    openings: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    net_transfers: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class StoredLedger:
    accounts: dict[str, StoredAccount]
    # The last execution sequence applied per stream source.
    cursors: dict[str, int]


class PortfolioRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        engine: AsyncEngine = sessions.kw["bind"]
        self._writer = Writer(engine.url, engine, "portfolio")
        # The (account, symbol) and (account, asset) rows stored: the ledger's upserts.
        self._positions: set[tuple[str, str]] = set()
        self._balances: set[tuple[str, str]] = set()

    # -- the ledger -------------------------------------------------------------------

    async def load_ledger(self) -> StoredLedger:
        """Every account with its positions, balances, openings, the last fill price per
        symbol and its valued transfers; and the stream cursors."""
        accounts: dict[str, StoredAccount] = {}
        async with self.sessions() as session:
            for row in (await session.scalars(select(AccountRow))).all():
                accounts[row.account_id] = StoredAccount(_account(row))
            for position_row in (await session.scalars(select(PositionRow))).all():
                stored = accounts[position_row.account_id]
                stored.positions[position_row.symbol] = _position(position_row)
                self._positions.add((position_row.account_id, position_row.symbol))
            for opening in (await session.scalars(select(OpeningPositionRow))).all():
                accounts[opening.account_id].openings[opening.symbol] = (
                    opening.quantity,
                    opening.price,
                )
            for balance in (await session.scalars(select(BalanceRow))).all():
                accounts[balance.account_id].balances[balance.asset] = balance.total
                self._balances.add((balance.account_id, balance.asset))
            last_fills = select(func.max(FillRow.id)).group_by(FillRow.account_id, FillRow.symbol)
            for account_id, symbol, price in await session.execute(
                select(FillRow.account_id, FillRow.symbol, FillRow.price).where(
                    FillRow.id.in_(last_fills)
                )
            ):
                accounts[account_id].last_prices[symbol] = price
            cursors = {row.source: row.sequence for row in await session.scalars(select(CursorRow))}
            for account_id, value in await session.execute(
                select(TransferRow.account_id, TransferRow.value).where(
                    TransferRow.value.is_not(None)
                )
            ):
                if value is not None:
                    accounts[account_id].net_transfers += value
        return StoredLedger(accounts, cursors)

    def close(self) -> None:
        self._writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LedgerTransaction]:
        """One write of the ledger: committed on leaving (DuplicateFill, or any error of
        the database, raised there and nothing written); nothing written on an error."""
        transaction = LedgerTransaction(self.sessions, self._positions, self._balances)
        yield transaction
        if transaction.writes:
            await self._writer.run(transaction.write)
        self._positions.update(transaction.new_positions)
        self._balances.update(transaction.new_balances)

    # -- reads ------------------------------------------------------------------------

    async def list_fills(
        self,
        account_id: str,
        *,
        symbol: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
        before: tuple[datetime, int] | None = None,
        limit: int = 100,
    ) -> list[StoredFill]:
        """Fills newest first; `before` is the (time, fill id) of the last fill of the
        previous page."""
        query = _filtered(select(FillRow), account_id, symbol, start, end)
        if before is not None:
            time, row_id = before
            query = query.where(
                or_(FillRow.time < time, and_(FillRow.time == time, FillRow.id < row_id))
            )
        query = query.order_by(FillRow.time.desc(), FillRow.id.desc()).limit(limit)
        async with self.sessions() as session:
            return [
                StoredFill(row.id, row.account_id, _trade(row))
                for row in await session.scalars(query)
            ]

    async def list_transfers(
        self,
        account_id: str,
        *,
        before: tuple[datetime, int] | None = None,
        limit: int = 100,
    ) -> list[Transfer]:
        """Transfers newest first; `before` is the (time, transfer id) of the last of the
        previous page."""
        query = select(TransferRow).where(TransferRow.account_id == account_id)
        if before is not None:
            time, row_id = before
            query = query.where(
                or_(
                    TransferRow.time < time,
                    and_(TransferRow.time == time, TransferRow.id < row_id),
                )
            )
        query = query.order_by(TransferRow.time.desc(), TransferRow.id.desc()).limit(limit)
        async with self.sessions() as session:
            return [_transfer(row) for row in await session.scalars(query)]

    async def trades_in_ledger_order(self, account_id: str, symbol: str = "") -> list[Trade]:
        """Every fill of an account (or of one symbol) in the order the ledger applied them."""
        query = _filtered(select(FillRow), account_id, symbol).order_by(FillRow.id)
        async with self.sessions() as session:
            return [_trade(row) for row in await session.scalars(query)]

    async def round_trip_pnls(
        self, account_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[Decimal]:
        """PnL of the round trips closed in [start, end)."""
        query = select(RoundTripRow.pnl).where(RoundTripRow.account_id == account_id)
        if start is not None:
            query = query.where(RoundTripRow.close_time >= start)
        if end is not None:
            query = query.where(RoundTripRow.close_time < end)
        async with self.sessions() as session:
            return list(await session.scalars(query.order_by(RoundTripRow.id)))

    # -- equity snapshots -------------------------------------------------------------

    async def add_equity_points(self, points: Iterable[tuple[str, EquityPoint]]) -> None:
        """Appends one snapshot per (account id, point)."""
        rows = [
            {
                "account_id": account_id,
                "time": point.time,
                "equity": point.equity,
                "cash": point.cash,
                "net_transfers": point.net_transfers,
            }
            for account_id, point in points
        ]
        if rows:
            statement = _insert(EquitySnapshotRow)
            await self._writer.run(lambda connection: connection.execute(statement, rows))

    async def equity_points(
        self, account_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[EquityPoint]:
        """Snapshots of an account, oldest first, within [start, end)."""
        query = select(EquitySnapshotRow).where(EquitySnapshotRow.account_id == account_id)
        if start is not None:
            query = query.where(EquitySnapshotRow.time >= start)
        if end is not None:
            query = query.where(EquitySnapshotRow.time < end)
        query = query.order_by(EquitySnapshotRow.time, EquitySnapshotRow.id)
        async with self.sessions() as session:
            return [
                EquityPoint(row.time, row.equity, row.cash, row.net_transfers)
                for row in await session.scalars(query)
            ]


class LedgerTransaction:
    """The writes of one ledger batch, in one database transaction: each method adds its
    statements, `write` runs them all (PortfolioRepository.transaction, as it closes)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stored_positions: set[tuple[str, str]],
        stored_balances: set[tuple[str, str]],
    ) -> None:
        self._sessions = sessions
        self._stored_positions = stored_positions
        self._stored_balances = stored_balances
        self._statements: list[tuple[Executable, list[dict[str, Any]]]] = []
        self.new_positions: set[tuple[str, str]] = set()
        self.new_balances: set[tuple[str, str]] = set()

    @property
    def writes(self) -> bool:
        return bool(self._statements)

    def write(self, connection: Connection) -> None:
        for statement, rows in self._statements:
            connection.execute(statement, rows)

    def _add(self, statement: Executable, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._statements.append((statement, rows))

    async def known_trades(self, trades: Sequence[Trade]) -> set[tuple[str, str]]:
        """The (venue, trade id) of those of `trades` stored already."""
        by_venue: dict[str, set[str]] = {}
        for trade in trades:
            by_venue.setdefault(trade.venue, set()).add(trade.trade_id)
        known: set[tuple[str, str]] = set()
        # Read before the writes: the ledger, the only writer, holds its lock meanwhile.
        async with self._sessions() as session:
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
        return known

    async def add_accounts(self, accounts: Iterable[Account]) -> None:
        rows = [
            {
                "account_id": account.account_id,
                "venue": account.venue,
                "kind": account.kind.value,
                "quote_currency": account.quote_currency,
                "create_time": account.create_time,
                "opening_sequence": account.opening_sequence,
                "opening_holdings": account.opening_holdings,
            }
            for account in accounts
        ]
        self._add(_insert(AccountRow), rows)

    async def add_fills(self, fills: Sequence[tuple[str, Trade]]) -> None:
        """Appends (account id, trade) fills; DuplicateFill if one is stored already."""
        self._add(
            _insert(FillRow),
            [_fill_values(account_id, trade) for account_id, trade in fills],
        )

    async def add_round_trips(self, round_trips: Sequence[tuple[str, RoundTrip]]) -> None:
        if round_trips:
            self._add(
                _insert(RoundTripRow),
                [
                    {
                        "account_id": account_id,
                        "symbol": trip.symbol,
                        "open_time": trip.open_time,
                        "close_time": trip.close_time,
                        "pnl": trip.pnl,
                    }
                    for account_id, trip in round_trips
                ],
            )

    async def save_positions(self, positions: dict[tuple[str, str], Position]) -> None:
        rows = [_position_values(key, position) for key, position in positions.items()]
        self.new_positions.update(positions)
        _upsert(self._add, PositionRow, rows, self._stored_positions, "symbol")

    async def save_balances(self, balances: dict[str, dict[str, Decimal]]) -> None:
        rows: list[dict[str, Any]] = [
            {"account_id": account_id, "asset": asset, "total": total}
            for account_id, totals in balances.items()
            for asset, total in totals.items()
        ]
        self.new_balances.update((row["account_id"], row["asset"]) for row in rows)
        _upsert(self._add, BalanceRow, rows, self._stored_balances, "asset")

    async def add_openings(
        self, account_id: str, openings: dict[str, tuple[Decimal, Decimal]]
    ) -> None:
        """The positions an account opened with: (quantity, price) per symbol."""
        if openings:
            self._add(
                _insert(OpeningPositionRow),
                [
                    {"account_id": account_id, "symbol": s, "quantity": q, "price": p}
                    for s, (q, p) in openings.items()
                ],
            )

    async def add_transfers(self, transfers: Sequence[Transfer]) -> None:
        if transfers:
            self._add(
                _insert(TransferRow),
                [
                    {
                        "account_id": t.account_id,
                        "asset": t.asset,
                        "amount": t.amount,
                        "value": t.value,
                        "time": t.time,
                        "as_of_sequence": t.as_of_sequence,
                    }
                    for t in transfers
                ],
            )

    async def save_sequence(self, source: str, sequence: int, *, stored: bool) -> None:
        """Records the last sequence applied from a stream; `stored`: the source has one already."""
        if stored:
            self._add(_UPDATE_CURSOR, [{"key_source": source, "sequence": sequence}])
        else:
            self._add(_insert(CursorRow), [{"source": source, "sequence": sequence}])


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


# The write statements, built once each: SQLAlchemy derives a cache key from a statement
# at every execution, which for one built per call is most of its cost.
_INSERTS: dict[str, Executable] = {}
_UPDATES: dict[tuple[str, tuple[str, ...]], Executable] = {}
_UPDATE_CURSOR = (
    update(_table(CursorRow))
    .where(_table(CursorRow).c.source == bindparam("key_source"))
    .values(sequence=bindparam("sequence"))
)


def _insert(model: type[Any]) -> Executable:
    table = _table(model)
    statement = _INSERTS.get(table.name)
    if statement is None:
        statement = _INSERTS[table.name] = insert(table)
    return statement


def _upsert(
    add: Callable[[Executable, list[dict[str, Any]]], None],
    model: type[PositionRow] | type[BalanceRow],
    rows: Iterable[dict[str, Any]],
    stored: set[tuple[str, str]],
    key: str,
) -> None:
    """Core executemany: UPDATE of the rows already stored, INSERT of the others (the
    ledger knows which, being the only writer: no dialect-specific upsert needed)."""
    table = _table(model)
    existing: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for row in rows:
        if (row["account_id"], row[key]) in stored:
            existing.append({**row, "key_account_id": row["account_id"], "key_item": row[key]})
        else:
            new.append(row)
    if existing:
        columns = tuple(
            name
            for name in existing[0]
            if not name.startswith("key_") and name not in ("account_id", key)
        )
        statement = _UPDATES.get((table.name, columns))
        if statement is None:
            statement = _UPDATES[(table.name, columns)] = (
                table.update()
                .where(table.c.account_id == bindparam("key_account_id"))
                .where(table.c[key] == bindparam("key_item"))
                .values({name: bindparam(name) for name in columns})
            )
        add(statement, existing)
    if new:
        add(_insert(model), new)


def _filtered(
    query: Select[FillRow],
    account_id: str,
    symbol: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Select[FillRow]:
    query = query.where(FillRow.account_id == account_id)
    if symbol:
        query = query.where(FillRow.symbol == symbol)
    if start is not None:
        query = query.where(FillRow.time >= start)
    if end is not None:
        query = query.where(FillRow.time < end)
    return query


def _account(row: AccountRow) -> Account:
    return Account(
        row.account_id,
        row.venue,
        AccountKind(row.kind),
        row.quote_currency,
        row.create_time,
        row.opening_sequence,
        row.opening_holdings,
    )


def _trade(row: FillRow) -> Trade:
    return Trade(
        venue=row.venue,
        trade_id=row.trade_id,
        symbol=row.symbol,
        side=TradeSide(row.side),
        quantity=row.quantity,
        price=row.price,
        fee=row.fee,
        fee_currency=row.fee_currency,
        time=row.time,
        order_id=row.order_id,
        client_order_id=row.client_order_id,
        liquidity=row.liquidity,
        sequence=row.sequence,
    )


def _transfer(row: TransferRow) -> Transfer:
    return Transfer(
        account_id=row.account_id,
        asset=row.asset,
        amount=row.amount,
        value=row.value,
        time=row.time,
        as_of_sequence=row.as_of_sequence,
        transfer_id=row.id,
    )


def _fill_values(account_id: str, trade: Trade) -> dict[str, Any]:
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


def _position_values(key: tuple[str, str], position: Position) -> dict[str, Any]:
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
