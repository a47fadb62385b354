"""The whole stack as `make run` starts it: real processes under supervisord.

Runs in a temp dir on free ports (never the defaults, never var/), and stops the way
Ctrl-C does: SIGINT to supervisord, which stops every program with SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from common.config import PROJECT_ROOT, SERVICE_NAMES, Config, load_config
from common.stack import PROGRAMS, memmon_arguments
from common.testing import wait_until_serving


def _supervisorctl(config: Config, *args: str) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "supervisorctl"), "-c", "supervisord.conf", *args],
        env={"EDGEQUANT_VAR_DIR": str(config.var_dir)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout


async def _wait_for_gateway(url: str, within: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while True:
            try:
                response = await client.get(url, timeout=2)
                if response.status_code == 200 or time.monotonic() > deadline:
                    return response
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


async def test_stack_serves_then_stops_cleanly(
    stack: subprocess.Popen[str], config: Config
) -> None:
    for name in SERVICE_NAMES:
        await wait_until_serving(config.service(name).address, within=60)
    healthz = await _wait_for_gateway(f"http://127.0.0.1:{config.gateway.port}/healthz")
    assert healthz.status_code == 200
    assert healthz.json() == {
        "status": "SERVING",
        "services": dict.fromkeys(SERVICE_NAMES, "SERVING"),
    }

    status = _supervisorctl(config, "status")
    for program in (*PROGRAMS, "memmon"):
        assert f"{program} " in status
    assert status.count("RUNNING") == len(PROGRAMS) + 1, status
    for program in PROGRAMS:
        assert (config.log_dir / f"{program}.log").exists()

    stack.send_signal(signal.SIGINT)
    output, _ = await asyncio.to_thread(stack.communicate, timeout=60)
    assert stack.returncode == 0
    assert f"gateway    http  http://127.0.0.1:{config.gateway.port}" in output
    for name in SERVICE_NAMES:
        log_lines = (config.log_dir / f"{name}.log").read_text().splitlines()
        assert '"message": "stopped"' in log_lines[-1], log_lines[-3:]


def test_memmon_budgets_come_from_the_config(environment: dict[str, str]) -> None:
    environment["EDGEQUANT_RISK__MEMORY_BUDGET_MIB"] = "77"
    arguments = memmon_arguments(load_config(environment)).split()
    assert "risk=77MB" in arguments
    assert arguments.count("-p") == len(PROGRAMS)
