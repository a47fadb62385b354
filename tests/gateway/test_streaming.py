"""Server-streaming RPCs as Server-Sent Events (a real Chromium's EventSource among the
clients) and as NDJSON; the gRPC call is cancelled when the client goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from common.testing import free_port
from gateway.testing import (
    TOKENS,
    TickerExchange,
    bearer,
    config_with,
    serve_asgi,
    ticker_exchange,
)

STREAM = "/v1/venues/paper/tickers:stream?symbols=BTC/USDT&symbols=ETH/USDT"


@pytest.fixture
async def streaming(
    environment: dict[str, str], gateway_for: Any
) -> AsyncIterator[tuple[TickerExchange, httpx.AsyncClient, str]]:
    """A scripted exchange streaming tickers, and the gateway in front of it; the UI
    origin a browser test serves its page from is in the CORS allow-list."""
    ui_port = free_port()
    ui_origin = f"http://localhost:{ui_port}"
    async with ticker_exchange(interval=0.02) as (exchange, address), _ui_page(ui_port):
        config = config_with(
            environment, EXCHANGE__ADDRESS=address, GATEWAY__CORS__ALLOW_ORIGINS=ui_origin
        )
        async with gateway_for(config) as client:
            yield exchange, client, ui_origin


def _ui_page(port: int) -> AbstractAsyncContextManager[None]:
    """A stand-in for the web UI: one blank page on its own local origin."""

    async def page(_request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>EdgeQuant UI</title>")

    return serve_asgi(Starlette(routes=[Route("/index.html", page)]), port)


async def _sse_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line.removeprefix("data: ")))
            if len(events) == count:
                break
    return events


async def test_sse_streams_tickers_and_cancels_the_call_when_the_client_leaves(
    streaming: tuple[TickerExchange, httpx.AsyncClient, str],
) -> None:
    exchange, client, _ = streaming
    async with client.stream(
        "GET", STREAM, headers={**bearer("reader"), "accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await _sse_events(response, 4)
    assert [e["ticker"]["symbol"] for e in events] == ["BTC/USDT", "ETH/USDT"] * 2
    assert events[0]["ticker"]["last"] == "60000.5"
    assert events[0]["ticker"]["time"] == "2023-11-14T22:13:20Z"
    # The response was closed mid-stream: the service's generator must be cancelled.
    await asyncio.wait_for(exchange.cancelled.wait(), timeout=10)


async def test_ndjson_when_the_client_asks(
    streaming: tuple[TickerExchange, httpx.AsyncClient, str],
) -> None:
    exchange, client, _ = streaming
    async with client.stream(
        "GET", STREAM, headers={**bearer("reader"), "accept": "application/x-ndjson"}
    ) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = []
        async for line in response.aiter_lines():
            if line.strip():
                lines.append(json.loads(line))
            if len(lines) == 3:
                break
    assert [line["result"]["ticker"]["symbol"] for line in lines] == [
        "BTC/USDT",
        "ETH/USDT",
        "BTC/USDT",
    ]
    await asyncio.wait_for(exchange.cancelled.wait(), timeout=10)


async def test_a_stream_that_fails_at_once_answers_with_its_status(
    streaming: tuple[TickerExchange, httpx.AsyncClient, str],
) -> None:
    _, client, _ = streaming
    # The scripted exchange knows only the paper venue: NOT_FOUND before any ticker.
    response = await client.get("/v1/venues/nowhere/tickers:stream", headers=bearer("reader"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["details"][0]["reason"] == "UNKNOWN_VENUE"


EVENT_SOURCE = """([url, count]) => new Promise((resolve, reject) => {
  const source = new EventSource(url);
  const received = [];
  source.onmessage = (event) => {
    received.push(JSON.parse(event.data));
    if (received.length === count) { source.close(); resolve(received); }
  };
  source.onerror = () => { source.close(); reject(new Error("EventSource failed")); };
})"""


async def test_an_event_source_in_chromium_receives_streamed_tickers(
    streaming: tuple[TickerExchange, httpx.AsyncClient, str], browser: Browser
) -> None:
    exchange, client, ui_origin = streaming
    # The page comes from the UI's own origin (another local server); its EventSource
    # goes cross-origin to the gateway, allowed by the CORS list.
    # EventSource cannot set headers: the token travels as access_token (RFC 6750).
    url = f"{client.base_url}{STREAM}&access_token={TOKENS['reader'][0]}"
    page = await browser.new_page()
    await page.goto(f"{ui_origin}/index.html")
    received = await page.evaluate(EVENT_SOURCE, [url, 5])
    assert len(received) == 5
    assert {event["ticker"]["symbol"] for event in received} == {"BTC/USDT", "ETH/USDT"}
    assert all(event["ticker"]["venue"] == "paper" for event in received)
    await asyncio.wait_for(exchange.cancelled.wait(), timeout=10)
