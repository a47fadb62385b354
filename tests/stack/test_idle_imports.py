"""An idle stack holds only what it uses: no process has imported numpy, the engines,
ccxt (paper venue) or alembic, the gateway no database layer, and no service what it
loads on a request's first use (bench.stack.LOADED_ON_FIRST_USE: statistics in risk,
multiprocessing in backtest, ...). Each process is a real one under supervisord; its
imports are read from outside (`-X importtime` in its log)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.stack import IMPORT_PROFILE, imported_modules, unneeded_imports
from common.stack import PROGRAMS
from common.testing import isolated_config, running_stack

pytestmark = pytest.mark.stack
# Idle after serving: a timer, a feed or a health probe that imports late shows here.
IDLE_SECONDS = 5.0


async def test_idle_processes_hold_no_unneeded_imports(tmp_path: Path) -> None:
    environment = {**isolated_config(tmp_path), **IMPORT_PROFILE}
    async with running_stack(environment) as stack:
        await asyncio.sleep(IDLE_SECONDS)
        # The profile is on: every program logged its imports (else the check proves nothing).
        for name in PROGRAMS:
            assert "grpc" in imported_modules(stack.config.log_dir / f"{name}.log"), name
        assert unneeded_imports(stack.config) == {name: [] for name in PROGRAMS}
