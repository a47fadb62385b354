"""Alembic environment shared by every service.

Each service keeps only its revisions, in services/<name>/migrations; this file runs
them against the service's database, with the service's metadata for autogenerate.
"""

from __future__ import annotations

import asyncio
import importlib

from alembic import context
from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table
from sqlalchemy.engine import Connection

from common.database import create_engine

config = context.config
service = config.get_main_option("service")
models = importlib.import_module(f"services.{service}.storage.models")
target_metadata = models.metadata


def _run(connection: Connection) -> None:
    # Batch mode lets SQLite alter tables (it copies them); other databases ignore it.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        _create_version_table(connection)
        context.run_migrations()


def _create_version_table(connection: Connection) -> None:
    """Alembic's own version table has VARCHAR(32), shorter than our revision ids
    ("backtest_0003_calendars_liquidation"): SQLite ignores the length, PostgreSQL does
    not. Created first with room to spare, Alembic finds it and uses it as it is."""
    Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(128), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    ).create(connection, checkfirst=True)


async def _run_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
