"""`python -m gateway`: a bad configuration stops the start with one line; a stop ends the
open streams."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import grpc
import httpx

from common.config import load_config
from gateway.testing import bearer, ticker_exchange, token_entries


def test_auth_off_on_a_lan_address_refuses_to_start(environment: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={
            **environment,
            "EDGEQUANT_GATEWAY__HOST": "0.0.0.0",
            "EDGEQUANT_GATEWAY__AUTH__ENABLED": "false",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("config error: gateway.auth.enabled: auth is off")


async def test_a_stop_ends_open_streams_at_once(environment: dict[str, str]) -> None:
    """SIGTERM with a stream open: the client gets UNAVAILABLE ("reconnect") as the last
    line and the gateway exits by itself (status 0, as a service does), instead of waiting
    for the client until supervisord kills it."""
    async with ticker_exchange(interval=30.0) as (_exchange, address):
        env = {
            **environment,
            "EDGEQUANT_EXCHANGE__ADDRESS": address,
            "EDGEQUANT_GATEWAY__AUTH__TOKENS": token_entries(),
        }
        config = load_config(env)
        gateway = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", env=env, stderr=asyncio.subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{config.gateway.port}"
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await _until_listening(client)
                headers = {**bearer("reader"), "Accept": "application/x-ndjson"}
                path = "/v1/venues/paper/tickers:stream?symbols=BTC/USDT"
                async with client.stream("GET", path, headers=headers) as response:
                    lines = response.aiter_lines()
                    assert "result" in json.loads(await anext(lines))
                    gateway.send_signal(signal.SIGTERM)
                    rest = [json.loads(line) async for line in lines if line.strip()]
            assert rest[-1]["error"]["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
            assert "stopping" in rest[-1]["error"]["message"]
            assert await asyncio.wait_for(gateway.wait(), 30) == 0
        finally:
            if gateway.returncode is None:
                gateway.kill()
                await gateway.wait()


async def _until_listening(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            await client.get("/openapi.json")
            return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise TimeoutError("the gateway did not listen")
