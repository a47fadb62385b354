from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def stack(environment: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`python -m common.stack` (what `make run` runs) in the isolated environment."""
    process = subprocess.Popen(
        [sys.executable, "-m", "common.stack"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    if process.poll() is None:
        # SIGTERM lets supervisord stop its programs; a SIGKILL would orphan them.
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
