"""Fixtures of the exchange tests: a scripted RiskService on a free port, and the exchange
(paper replay clock stopped) against it, on a real SQLite file in tmp_path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from common.config import load_config
from common.testing import free_port, isolated_config, serving
from edgequant.risk.v1 import risk_pb2_grpc
from tests.services.exchange.exchange_testing import (
    Exchange,
    ScriptedRisk,
    StartExchange,
    running_exchange,
)


@pytest.fixture
def risk() -> ScriptedRisk:
    # The generated base answers UNIMPLEMENTED for the RPCs the script leaves out.
    return ScriptedRisk()  # type: ignore[abstract]


@pytest.fixture
async def risk_address(risk: ScriptedRisk) -> AsyncIterator[str]:
    async with serving(risk, risk_pb2_grpc.add_RiskServiceServicer_to_server) as address:
        yield address


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exchange database migrated to head once; each test starts from a copy."""
    path = tmp_path_factory.mktemp("migrated") / "exchange.db"
    url = f"sqlite+aiosqlite:///{path}"
    subprocess.run([sys.executable, "-m", "common.migrate", "exchange", url], check=True)
    return path


@pytest.fixture
def start_exchange(tmp_path: Path, risk_address: str, migrated_database: Path) -> StartExchange:
    """Starts the exchange (paper replay clock stopped) against the scripted risk; calling
    it again after the first has stopped restarts it on the same database."""

    @asynccontextmanager
    async def start(**overrides: str) -> AsyncIterator[Exchange]:
        settings = {
            "RISK__ADDRESS": risk_address,
            "EXCHANGE__PAPER__SPEED": "0",
            "EXCHANGE__RISK__RECONNECT_MIN_SECONDS": "0.05",
            **overrides,
        }
        config = load_config(isolated_config(tmp_path / "config", **settings))
        async with running_exchange(config, migrated_database) as exchange:
            yield exchange

    return start


@pytest.fixture
async def exchange(start_exchange: StartExchange) -> AsyncIterator[Exchange]:
    async with start_exchange() as running:
        yield running


@pytest.fixture
def dead_address() -> str:
    """An address nothing listens on."""
    return f"127.0.0.1:{free_port()}"
