"""`make run`'s ready line: printed once the gateway's /healthz is 200, which needs every
service SERVING; a stack that never gets there is named, not waited on forever.
(tests/stack/test_supervisord.py sees the line from the real stack.)"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from common.config import PROJECT_ROOT, SERVICE_NAMES, Config
from common.stack import announce_ready, ready_line
from gateway.testing import serve_asgi


def test_the_ready_line_names_every_address(config: Config) -> None:
    line = ready_line(config)
    assert line.startswith(f"EdgeQuant ready: gateway http://127.0.0.1:{config.gateway.port}, ")
    for name in SERVICE_NAMES:
        assert f"{name} {config.service(name).address}" in line


def test_nothing_listening_gives_up_naming_why(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert announce_ready(config, os.getppid(), within=0.5) == 1
    output = capsys.readouterr().out
    assert output.startswith("EdgeQuant not ready after 0 s: gateway: ")
    assert "EdgeQuant ready" not in output


async def test_a_service_not_serving_holds_the_line_back(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    services = dict.fromkeys(SERVICE_NAMES, "SERVING")
    services["risk"] = "NOT_SERVING"

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "NOT_SERVING", "services": services}, status_code=503)

    app = Starlette(routes=[Route("/healthz", healthz)])
    async with serve_asgi(app, config.gateway.port):
        result = await asyncio.to_thread(announce_ready, config, os.getppid(), 1.0)
    assert result == 1
    assert "not ready after 1 s: risk NOT_SERVING; " in capsys.readouterr().out

    services["risk"] = "SERVING"

    async def serving(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "SERVING", "services": services})

    app = Starlette(routes=[Route("/healthz", serving)])
    async with serve_asgi(app, config.gateway.port):
        result = await asyncio.to_thread(announce_ready, config, os.getppid(), 30.0)
    assert result == 0
    assert capsys.readouterr().out.startswith(ready_line(config) + " (")


def test_a_taken_port_stops_make_run_before_supervisord(
    environment: dict[str, str], config: Config
) -> None:
    """Another process on the gateway's port: `make run` says so and starts nothing,
    instead of restarting the gateway for ever and reading the other one's /healthz."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", config.gateway.port))
        other.listen()
        finished = subprocess.run(
            [sys.executable, "-m", "common.stack"],
            env={**os.environ, **environment},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert finished.returncode == 2
    assert f"gateway cannot listen on 127.0.0.1:{config.gateway.port}" in finished.stderr
    assert "exchange" not in finished.stderr  # the free ones are not named
    assert not (config.var_dir / "log").exists()  # nothing was started
