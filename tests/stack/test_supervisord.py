"""The whole stack as `make run` starts it: real processes under supervisord.

Runs in a temp dir on free ports (never the defaults, never var/), and stops the way
Ctrl-C does: SIGINT to supervisord, which stops every program with SIGTERM.
"""

from __future__ import annotations

import asyncio
import configparser
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from common.config import PROJECT_ROOT, SERVICE_NAMES, Config, load_config
from common.stack import PROGRAMS, memmon_arguments, ready_line
from common.testing import SERVING, health_status


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


def _lines_until(stream: IO[str], prefix: str) -> list[str]:
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"the stack ended without a line starting {prefix!r}: {lines}")


async def test_stack_serves_then_stops_cleanly(
    stack: subprocess.Popen[str], config: Config
) -> None:
    assert stack.stdout is not None
    # `make run` says when it is ready, and only then does everything serve.
    printed = await asyncio.wait_for(
        asyncio.to_thread(_lines_until, stack.stdout, "EdgeQuant ready: "), timeout=240
    )
    assert printed[-1].startswith(ready_line(config) + " ("), printed[-1]
    assert f"gateway http://127.0.0.1:{config.gateway.port}, " in printed[-1]
    for name in SERVICE_NAMES:
        assert await health_status(config.service(name).address) == SERVING, name
    healthz = await _wait_for_gateway(f"http://127.0.0.1:{config.gateway.port}/healthz", within=0)
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
    rest, _ = await asyncio.to_thread(stack.communicate, timeout=60)
    output = "".join(printed) + rest
    assert stack.returncode == 0
    assert "Traceback" not in output
    assert f"gateway    http  http://127.0.0.1:{config.gateway.port}" in output
    for name in SERVICE_NAMES:
        log_lines = (config.log_dir / f"{name}.log").read_text().splitlines()
        assert '"message": "stopped"' in log_lines[-1], log_lines[-3:]


def test_memmon_budgets_come_from_the_config(environment: dict[str, str]) -> None:
    environment["EDGEQUANT_RISK__MEMORY_BUDGET_MIB"] = "77"
    arguments = memmon_arguments(load_config(environment)).split()
    assert "risk=77MB" in arguments
    assert arguments.count("-p") == len(PROGRAMS)


def _memmon_section() -> dict[str, str]:
    parser = configparser.RawConfigParser()
    parser.read(PROJECT_ROOT / "supervisord.conf")
    return dict(parser["eventlistener:memmon"])


def test_memmon_stops_without_a_traceback(tmp_path: Path) -> None:
    """supervisord.conf's memmon, beside a program that takes 8 s to stop: TICK_5 events
    reach memmon while supervisord shuts down, when it answers SHUTDOWN_STATE."""
    memmon = "\n".join(
        f"{key}={value.replace('%(here)s', str(PROJECT_ROOT))}"
        for key, value in _memmon_section().items()
    )
    slow_stop = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    )
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"""[supervisord]
nodaemon=true
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
[unix_http_server]
file={tmp_path}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:slow]
command={sys.executable} -c "{slow_stop}"
startsecs=0
stopwaitsecs=8
[eventlistener:memmon]
{memmon}
"""
    )
    (tmp_path / "log").mkdir()
    environment = {
        "EDGEQUANT_VAR_DIR": str(tmp_path),
        "STACK_PYTHON": sys.executable,
        "STACK_MEMMON_ARGS": "-p slow=1000MB",
        "PATH": "/usr/bin:/bin",
    }
    supervisord = subprocess.Popen(
        [str(Path(sys.executable).parent / "supervisord"), "-n", "-c", str(conf)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    log = tmp_path / "log" / "memmon.log"
    try:
        deadline = time.monotonic() + 60
        while "RSS of slow:slow" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "memmon checked nothing within 60 s"
            time.sleep(0.2)
        checks_before_stop = log.read_text().count("Checking programs")
        supervisord.send_signal(signal.SIGTERM)
        assert supervisord.wait(timeout=60) == 0
    finally:
        if supervisord.poll() is None:
            supervisord.kill()
            supervisord.wait()
    output = log.read_text()
    assert output.count("Checking programs") > checks_before_stop, "no tick while stopping"
    assert "Traceback" not in output, output
    assert "exited unexpectedly" not in (tmp_path / "supervisord.log").read_text()
