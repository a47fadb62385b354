"""What every fake REST venue shares: serving on 127.0.0.1, counting calls per route,
and failing on demand, one fault per call of a route.

Faults: "429", "500", "503"; "garbage" (an HTML page with status 200); "timeout" (no
answer in time, nothing done); "timeout-after" (the venue acts, then the answer is
lost); "place-late" (the venue acts only after the client has given up); "system-error"
and "insufficient" (the venue's own error envelope: a generic failure that proves
nothing, and a refusal).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from common.testing import free_port

# How long a "timeout" fault keeps the client waiting (tests set ccxt's timeout below it).
HANG_SECONDS = 2.5


@dataclass
class FakeVenue:
    url: str = ""
    # client order id -> the venue's order record, in the venue's own format
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # client order id -> the venue's trade records of that order
    trades: defaultdict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # route ("GET /api/v3/ticker/24hr") -> faults to play, one per call
    faults: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    calls: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    next_order_id: int = 1000
    # How long each answer took the fake itself (benchmarks compare against it).
    answer_ms: list[float] = field(default_factory=list)

    def fail(self, route: str, *faults: str) -> None:
        self.faults[route].extend(faults)

    async def dispatch(self, request: Request) -> Response:
        started = time.perf_counter()
        response = await self._dispatch(request)
        self.answer_ms.append((time.perf_counter() - started) * 1000)
        return response

    async def _dispatch(self, request: Request) -> Response:  # noqa: PLR0911 - one per fault
        route = f"{request.method} {request.url.path}"
        body = (await request.body()).decode()
        self.calls[route] += 1
        fault = self.faults[route].pop(0) if self.faults[route] else ""
        if fault == "429":
            return self.rate_limited()
        if fault == "500":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if fault == "503":
            return PlainTextResponse("Service Unavailable", status_code=503)
        if fault == "garbage":
            return PlainTextResponse("<html><body>upstream error", status_code=200)
        if fault in ("system-error", "insufficient"):
            return self.venue_error(fault)
        if fault == "timeout":  # nothing done; the answer comes after the client gave up
            await asyncio.sleep(HANG_SECONDS)
            return PlainTextResponse("", status_code=504)
        if fault == "place-late":
            loop = asyncio.get_running_loop()
            loop.call_later(HANG_SECONDS, self.answer, request, route, body)
            await asyncio.sleep(HANG_SECONDS + 0.5)
            return PlainTextResponse("", status_code=504)
        response = self.answer(request, route, body)
        if fault == "timeout-after":
            await asyncio.sleep(HANG_SECONDS)
        return response

    # -- each venue's own ---------------------------------------------------------------

    def answer(self, request: Request, route: str, body: str) -> Response:
        raise NotImplementedError

    def rate_limited(self) -> Response:
        raise NotImplementedError

    def venue_error(self, fault: str) -> Response:
        raise NotImplementedError


_Fake = TypeVar("_Fake", bound=FakeVenue)


@contextlib.asynccontextmanager
async def serving(make: Callable[[], _Fake]) -> AsyncIterator[_Fake]:
    fake = make()
    app = Starlette(
        routes=[Route("/{path:path}", fake.dispatch, methods=["GET", "POST", "DELETE", "PUT"])]
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
