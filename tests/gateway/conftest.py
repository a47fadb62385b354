"""Gateway fixtures: the isolated stack's environment with tokens of every scope, and
the gateway served by uvicorn on a free port."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from common.config import SERVICE_NAMES, Config
from gateway.testing import Recorder, config_with, recording, serve_gateway, token_entries

ServeGateway = Callable[[Config], AbstractAsyncContextManager[httpx.AsyncClient]]
RecordedGateway = Callable[..., AbstractAsyncContextManager[tuple[Recorder, httpx.AsyncClient]]]


@pytest.fixture
def environment(environment: dict[str, str]) -> dict[str, str]:
    """The isolated stack's environment, with gateway.testing.TOKENS configured."""
    return {**environment, "EDGEQUANT_GATEWAY__AUTH__TOKENS": token_entries()}


# Debian's chromium (.ci/run installs it), never a browser playwright downloads.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is absent: apt-get install chromium (.ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A real headless Chromium. Absent: skipped with the reason, except under CI=true,
    where a test that cannot run must fail."""
    _chromium_or_skip()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def gateway_for() -> ServeGateway:
    return serve_gateway


@pytest.fixture
def gateway_to_recorder(environment: dict[str, str]) -> RecordedGateway:
    """Starts the gateway in front of one Recorder that stands in for all four services;
    keyword arguments are extra EDGEQUANT_* overrides (e.g. GATEWAY__LIMITS__BURST="5")."""

    @asynccontextmanager
    async def start(**overrides: str) -> AsyncIterator[tuple[Recorder, httpx.AsyncClient]]:
        async with recording() as (recorder, address):
            addresses = {f"{name.upper()}__ADDRESS": address for name in SERVICE_NAMES}
            config = config_with(environment, **addresses, **overrides)
            async with serve_gateway(config) as client:
                yield recorder, client

    return start


@pytest.fixture
async def gateway(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_gateway(config) as client:
        yield client
