"""Fixtures of the portfolio tests: a scripted exchange over real gRPC, and the real
portfolio service pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from common.config import load_config
from common.server import RunningService, running
from common.testing import isolated_config, serving
from edgequant.exchange.v1 import exchange_pb2_grpc
from services.portfolio.main import SPEC
from services.portfolio.testing import ScriptedExchange


@pytest.fixture
async def exchange() -> AsyncIterator[tuple[ScriptedExchange, str]]:
    # Only the typing stubs mark the other RPCs abstract; at run time they answer UNIMPLEMENTED.
    scripted = ScriptedExchange()  # type: ignore[abstract]
    async with serving(
        scripted, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
    ) as address:
        yield scripted, address


@pytest.fixture
def portfolio(
    tmp_path: Path, exchange: tuple[ScriptedExchange, str]
) -> Callable[..., AbstractAsyncContextManager[RunningService]]:
    """Runs the real portfolio service in-process against the scripted exchange; keyword
    arguments are extra EDGEQUANT_* overrides. The database persists across runs."""

    @asynccontextmanager
    async def run(**overrides: str) -> AsyncIterator[RunningService]:
        environment = isolated_config(
            tmp_path / "stack",
            EXCHANGE__ADDRESS=exchange[1],
            PORTFOLIO__INGESTION__BACKOFF_INITIAL_SECONDS="0.02",
            PORTFOLIO__INGESTION__BACKOFF_MAX_SECONDS="0.1",
            # In-process, the RSS the guard sees is the whole test runner's.
            PORTFOLIO__MEMORY_BUDGET_MIB="2048",
            **overrides,
        )
        async with running(SPEC, load_config(environment)) as service:
            yield service

    return run
