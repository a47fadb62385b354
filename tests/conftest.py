"""Fixtures shared by every test: an isolated config (temp dir, free ports), services, and
a real PostgreSQL server for the tests that run on it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from common.config import Config, load_config
from common.server import RunningService, running
from common.testing import (
    PostgresServer,
    isolated_config,
    postgres_bin_dir,
    postgres_unavailable_reason,
    wait_until_serving,
)
from services.registry import SPECS


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """EDGEQUANT_* environment of a stack in tmp_path on free ports."""
    return isolated_config(tmp_path)


@pytest.fixture
def config(environment: dict[str, str]) -> Config:
    return load_config(environment)


@pytest.fixture
async def services(config: Config) -> AsyncIterator[list[RunningService]]:
    """The four services, serving in this process on free ports (risk reports SERVING
    once its accounts have synced with the other three)."""
    async with AsyncExitStack() as stack:
        started = [await stack.enter_async_context(running(spec, config)) for spec in SPECS]
        for service in started:
            await wait_until_serving(service.address)
        yield started


# `slow` (make test-fast leaves them out; make test runs them): tests under these folders,
# with these markers, or using these fixtures.
SLOW_FOLDERS = ("stack", "bench", "fuzz", "deploy")
SLOW_MARKERS = ("stack", "bench", "postgres")
SLOW_FIXTURES = (
    "services",  # the four services in this process, risk synced with the others
    "postgres_server",
)
# Whole-stack and bench tests run for minutes by design; the rest get the default timeout.
LONG_TIMEOUT_SECONDS = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        # A test on the PostgreSQL server is marked so (`-m postgres` selects them all).
        if "postgres_server" in fixtures:
            item.add_marker(pytest.mark.postgres)
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if (
            folder in SLOW_FOLDERS
            or any(item.get_closest_marker(name) for name in SLOW_MARKERS)
            or any(name in fixtures for name in SLOW_FIXTURES)
        ):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("timeout") is None and (
            item.get_closest_marker("stack") or item.get_closest_marker("bench")
        ):
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_SECONDS))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (initdb + pg_ctl in a temp dir, on a free
    port); skips, naming why, where its binaries are absent (CI installs them)."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)  # .ci/run installs it: a test that cannot run fails
        pytest.skip(reason)
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database of its own on the session's server."""
    return postgres_server.create_database()
