"""Each service's migrations on a real SQLite file and a real PostgreSQL server: up, down,
up; pragmas applied."""

from __future__ import annotations

import asyncio
import importlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from common import migrate
from common.config import SERVICE_NAMES
from common.database import create_engine, upgrade_in_child
from common.errors import StartupError


def _version(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_upgrade_downgrade_upgrade(service: str, tmp_path: Path) -> None:
    path = tmp_path / f"{service}.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(service, url)
    head = _version(path)
    assert len(head) == 1
    assert head[0].startswith(f"{service}_")
    migrate.downgrade(service, url, "base")
    assert _version(path) == []
    migrate.upgrade(service, url)
    assert _version(path) == head


async def test_upgrade_in_child_creates_the_database(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "risk.db"
    await upgrade_in_child("risk", f"sqlite+aiosqlite:///{path}")
    assert _version(path) == ["risk_0003_account_risk"]


async def test_failed_migration_is_one_line(tmp_path: Path) -> None:
    not_a_database = tmp_path / "risk.db"
    not_a_database.write_text("this is not sqlite " * 100)
    with pytest.raises(StartupError, match=r"^risk: database migration failed: .+") as raised:
        await upgrade_in_child("risk", f"sqlite+aiosqlite:///{not_a_database}")
    assert "\n" not in str(raised.value)


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    async with engine.connect() as connection:
        pragmas = {
            name: (await connection.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    await engine.dispose()
    # synchronous: 1 is NORMAL.
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
        "foreign_keys": 1,
    }


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_one_migration_set_builds_the_models_on_postgresql(service: str, postgres_url: str) -> None:
    """The same revisions SQLite runs (batch mode) build on PostgreSQL exactly what the
    models declare, and go down to nothing and up again."""
    migrate.upgrade(service, postgres_url)
    models = importlib.import_module(f"services.{service}.storage.models")

    async def differences_and_version() -> tuple[list[Any], list[str]]:
        engine = create_engine(postgres_url)
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), models.metadata)
            )
            versions = await connection.execute(text("SELECT version_num FROM alembic_version"))
            head = [row[0] for row in versions]
        await engine.dispose()
        return differences, head

    differences, head = asyncio.run(differences_and_version())
    assert differences == []
    assert len(head) == 1
    assert head[0].startswith(f"{service}_")
    migrate.downgrade(service, postgres_url, "base")
    assert asyncio.run(differences_and_version())[1] == []
    migrate.upgrade(service, postgres_url)
    assert asyncio.run(differences_and_version())[1] == head
