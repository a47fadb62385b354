"""Alembic migrations of a service's database: `python -m common.migrate SERVICE URL [REVISION]`
(URL `-` reads it from stdin).

Services run this in a child process at start (common.database.upgrade_in_child).
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

from common.config import PROJECT_ROOT

ENVIRONMENT = Path(__file__).resolve().parent / "migrations"


def alembic_config(service: str, database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(ENVIRONMENT))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", str(PROJECT_ROOT / "services" / service / "migrations")
    )
    config.set_main_option("service", service)
    # ConfigParser interpolation: a literal % in a URL (an escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, database_url), revision)


def downgrade(service: str, database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(service, database_url), revision)


def main() -> None:
    service, database_url, *revision = sys.argv[1:]
    if database_url == "-":  # from stdin (upgrade_in_child): kept out of the process list
        database_url = sys.stdin.readline().strip()
    upgrade(service, database_url, *revision)


if __name__ == "__main__":
    main()
