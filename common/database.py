"""One SQLite (or PostgreSQL) database per service, through SQLAlchemy's async engine.

Migrations are applied at start in a short-lived child process (`python -m
common.migrate`), so that Alembic (about 11 MiB of RSS) never stays resident in the
long-running server.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from common.errors import StartupError

# Durable across process crashes (WAL) without an fsync per commit (NORMAL); waits for
# a writer rather than failing at once; enforces the schema's foreign keys.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        try:
            return _create_async_engine(url, pool_pre_ping=True)
        except ModuleNotFoundError as missing:
            raise StartupError(
                f"{parsed.drivername}: the driver {missing.name} is not installed "
                "(pip install 'edgequant[postgres]' for postgresql+asyncpg)"
            ) from None
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = _create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _apply_sqlite_pragmas)
    return engine


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def upgrade_in_child(service: str, database_url: str) -> None:
    """Runs `upgrade` in a child process; raises StartupError if it fails."""
    # The URL goes through stdin, not argv: a password in it would show in `ps`.
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "common.migrate",
        service,
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await child.communicate(database_url.encode() + b"\n")
    if child.returncode != 0:
        last_line = output.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise StartupError(f"{service}: database migration failed: {last_line[0]}")
