"""Gateway fixtures: the isolated stack's environment with tokens of every scope, and
the gateway served by uvicorn on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from common.config import Config
from gateway.testing import serve_gateway, token_entries

ServeGateway = Callable[[Config], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def environment(environment: dict[str, str]) -> dict[str, str]:
    """The isolated stack's environment, with gateway.testing.TOKENS configured."""
    return {**environment, "EDGEQUANT_GATEWAY__AUTH__TOKENS": token_entries()}


@pytest.fixture
def gateway_for() -> ServeGateway:
    return serve_gateway


@pytest.fixture
async def gateway(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_gateway(config) as client:
        yield client
