"""Fixtures shared by every test: an isolated config (temp dir, free ports), services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from common.config import Config, load_config
from common.server import RunningService, running
from common.testing import isolated_config
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
    """The four services, serving in this process on free ports."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running(spec, config)) for spec in SPECS]
