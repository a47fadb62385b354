"""The exchange's models and its Alembic revisions describe the same schema."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from common import migrate
from services.exchange.storage.models import metadata


def test_migrations_build_what_the_models_declare(tmp_path: Path) -> None:
    database = tmp_path / "exchange.db"
    migrate.upgrade("exchange", f"sqlite+aiosqlite:///{database}")
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()

    assert differences == []
