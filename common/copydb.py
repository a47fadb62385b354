"""Moves one service's database to another (SQLite to PostgreSQL, typically):
`python -m common.copydb SRC_URL DST_URL`.

The service is the source's: its Alembic revision names it ("portfolio_0004_..."). The
source must be at head (start the service on it once, or `python -m common.migrate`);
the destination must hold no rows. The destination is migrated to the same head, every
table is copied in foreign-key order through the service's models (so decimals, times
and JSON go through the same types the service uses), PostgreSQL's id sequences are
moved past the copied ids, and then every table is read back from both, ordered by
primary key, and compared row for row. The source is only read.

Stop the service before copying: rows written during the copy would be missed (and the
check would report them).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from common import migrate
from common.config import SERVICE_NAMES
from common.database import create_engine

VERSION_TABLE = "alembic_version"
BATCH_ROWS = 1000


class CopyRefused(Exception):
    """The copy cannot start (or did not verify); the message is one line for the operator."""


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _tables_and_version(url: str) -> tuple[dict[str, int], list[str]]:
    """Row counts of the database's tables (without Alembic's), and its revision(s)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names: list[str] = await connection.run_sync(
                lambda sync: inspect(sync).get_table_names()
            )
            counts: dict[str, int] = {}
            for name in names:
                if name == VERSION_TABLE:
                    continue
                table = Table(name, MetaData())
                counts[name] = int(
                    (await connection.execute(select(func.count()).select_from(table))).scalar_one()
                )
            versions: list[str] = []
            if VERSION_TABLE in names:
                version_table = Table(VERSION_TABLE, MetaData(), Column("version_num", String))
                result = await connection.execute(select(version_table.c.version_num))
                versions = [str(row[0]) for row in result]
    finally:
        await engine.dispose()
    return counts, versions


def _service_of(versions: Sequence[str], source: str) -> str:
    if len(versions) != 1:
        raise CopyRefused(f"{source} is not a migrated EdgeQuant database (no Alembic revision)")
    service = versions[0].split("_", 1)[0]
    if service not in SERVICE_NAMES:
        raise CopyRefused(f"{source} is at revision {versions[0]}, of no EdgeQuant service")
    return service


def _head(service: str, url: str) -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config(service, url)).get_current_head()
    assert head is not None, service
    return head


async def check(source_url: str, destination_url: str) -> str:
    """The service whose data would be copied; raises CopyRefused when it must not be."""
    source, destination = _shown(source_url), _shown(destination_url)
    if make_url(source_url) == make_url(destination_url):
        raise CopyRefused("source and destination are the same database")
    _, versions = await _tables_and_version(source_url)
    service = _service_of(versions, source)
    head = _head(service, source_url)
    if versions[0] != head:
        raise CopyRefused(
            f"{source} is at {versions[0]}, not at head {head}: upgrade it first "
            f"(python -m common.migrate {service} SRC_URL)"
        )
    counts, destination_versions = await _tables_and_version(destination_url)
    filled = {name: rows for name, rows in counts.items() if rows}
    if filled:
        name, rows = next(iter(sorted(filled.items())))
        raise CopyRefused(
            f"{destination} is not empty ({name} has {rows} rows): copy only into an empty database"
        )
    other = [v for v in destination_versions if not v.startswith(f"{service}_")]
    if other:
        raise CopyRefused(f"{destination} belongs to another service (revision {other[0]})")
    return service


def _metadata(service: str) -> MetaData:
    metadata = importlib.import_module(f"services.{service}.storage.models").metadata
    assert isinstance(metadata, MetaData)
    return metadata


def _value(value: Any) -> Any:
    # SQLite keeps no zone: the services store UTC, which PostgreSQL's timestamptz is told.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _ordered(table: Table, connection: AsyncConnection) -> Any:
    """All rows of `table`, ordered by primary key the same way on every database
    (strings bytewise: SQLite's BINARY, PostgreSQL's "C")."""
    keys = list(table.primary_key.columns) or list(table.columns)
    postgres = connection.dialect.name == "postgresql"
    order = [key.collate("C") if postgres and isinstance(key.type, String) else key for key in keys]
    return select(table).order_by(*order)


async def _rows(connection: AsyncConnection, table: Table) -> AsyncIterator[tuple[Any, ...]]:
    result = await connection.stream(_ordered(table, connection))
    async for partition in result.partitions(BATCH_ROWS):
        for row in partition:
            yield tuple(_value(value) for value in row)


async def copy(service: str, source_url: str, destination_url: str) -> dict[str, int]:
    """Copies every table in one destination transaction; returns the rows per table."""
    metadata = _metadata(service)
    copied: dict[str, int] = {}
    source_engine, destination_engine = create_engine(source_url), create_engine(destination_url)
    try:
        async with source_engine.connect() as source, destination_engine.begin() as destination:
            for table in metadata.sorted_tables:
                names = [column.name for column in table.columns]
                batch: list[dict[str, Any]] = []
                copied[table.name] = 0
                async for row in _rows(source, table):
                    batch.append(dict(zip(names, row, strict=True)))
                    if len(batch) == BATCH_ROWS:
                        await destination.execute(table.insert(), batch)
                        copied[table.name] += len(batch)
                        batch = []
                if batch:
                    await destination.execute(table.insert(), batch)
                    copied[table.name] += len(batch)
            if destination.dialect.name == "postgresql":
                await destination.run_sync(_advance_sequences, metadata)
    finally:
        await source_engine.dispose()
        await destination_engine.dispose()
    return copied


def _advance_sequences(connection: Connection, metadata: MetaData) -> None:
    """Copied ids were given explicitly: the next id a sequence hands out must follow them."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer) or column.autoincrement is False:
                continue
            highest = func.max(column)
            connection.execute(
                select(func.setval(func.pg_get_serial_sequence(table.name, column.name), highest))
                .select_from(table)
                .having(highest.is_not(None))
            )


async def verify(service: str, source_url: str, destination_url: str) -> None:
    """Raises CopyRefused naming the first table and row where the two databases differ."""
    source_engine, destination_engine = create_engine(source_url), create_engine(destination_url)
    try:
        async with source_engine.connect() as source, destination_engine.connect() as destination:
            for table in _metadata(service).sorted_tables:
                source_rows, destination_rows = _rows(source, table), _rows(destination, table)
                number = 0
                while True:
                    expected = await anext(source_rows, None)
                    found = await anext(destination_rows, None)
                    if expected is None and found is None:
                        break
                    number += 1
                    if expected != found:
                        raise CopyRefused(
                            f"verification failed: {table.name} row {number} differs "
                            f"(source {expected!r}, destination {found!r})"
                        )
    finally:
        await source_engine.dispose()
        await destination_engine.dispose()


def copy_database(source_url: str, destination_url: str) -> tuple[str, dict[str, int]]:
    """Checks, migrates the destination to head, copies, verifies; returns the service and
    the rows copied per table. Raises CopyRefused."""
    service = asyncio.run(check(source_url, destination_url))
    migrate.upgrade(service, destination_url)
    copied = asyncio.run(copy(service, source_url, destination_url))
    asyncio.run(verify(service, source_url, destination_url))
    return service, copied


def main(arguments: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if arguments is None else arguments)
    if len(arguments) != 2:
        print("usage: python -m common.copydb SRC_URL DST_URL", file=sys.stderr)
        return 2
    source_url, destination_url = arguments
    try:
        service, copied = copy_database(source_url, destination_url)
    except CopyRefused as refused:
        print(f"copydb: {refused}", file=sys.stderr)
        return 1
    for name, rows in copied.items():
        print(f"{name}: {rows} rows")
    print(
        f"copydb: {service}: {sum(copied.values())} rows in {len(copied)} tables copied to "
        f"{_shown(destination_url)} and verified row for row"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
