"""The outermost layer of every request: request id, security headers, access log, metrics.

- `x-request-id`: the client's (up to 128 characters) or a new one; echoed in the
  response, passed to the services, and carried by every log line of the request.
- Security headers on every response (a handler may set its own CSP, as /docs does).
- One JSON access-log line per request (path without the query: it may hold a token).
- Prometheus: requests by route template, method and status; latency by route.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.logs import new_request_id, request_id
from common.metrics import Histogram, family

log = logging.getLogger("edgequant.gateway.access")

REQUEST_ID = "x-request-id"
ROUTE_KEY = "edgequant.route"
# Routes labelled by their path; RPC routes by their template (set by the proxy); the
# rest (404s, assets) share one label, so label values stay few.
FIXED = frozenset({"/healthz", "/metrics", "/openapi.json", "/docs"})
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cache-control": "no-store",
}
_REQUEST_ID_RAW = REQUEST_ID.encode()
_SECURITY_RAW = tuple((name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items())
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class Metrics:
    """The gateway's own metrics, written as Prometheus text by common.metrics (as every
    service's are)."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], int] = {}  # (route, method, status)
        self._latency: dict[str, Histogram] = {}  # route -> its latency
        self.in_flight = 0

    def observe(self, route: str, method: str, status: int, duration: float) -> None:
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = Histogram(_LATENCY_BUCKETS)
        latency.observe(duration)

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format (common.metrics.CONTENT_TYPE)."""
        requests = family(
            "edgequant_gateway_requests_total",
            "counter",
            "HTTP requests answered, by route template, method and status.",
            (
                ("", {"route": route, "method": method, "status": str(status)}, count)
                for (route, method, status), count in sorted(self._requests.items())
            ),
        )
        latency = family(
            "edgequant_gateway_request_duration_seconds",
            "histogram",
            "Time to the end of the response (of the stream, for streaming RPCs).",
            (
                sample
                for route, histogram in sorted(self._latency.items())
                for sample in histogram.samples({"route": route})
            ),
        )
        in_flight = family(
            "edgequant_gateway_requests_in_flight",
            "gauge",
            "Requests being answered, open streams included.",
            [("", {}, self.in_flight)],
        )
        return "".join([*requests, *latency, *in_flight]).encode()


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _with_headers(message.get("headers", ()), rid)
            await send(message)

        self.metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.metrics.in_flight -= 1
            duration = time.perf_counter() - started
            route = scope.get(ROUTE_KEY) or (path if (path := scope["path"]) in FIXED else "-")
            self.metrics.observe(route, scope["method"], status, duration)
            _log_access(scope, rid, route, status, duration)
            request_id.reset(token)


def _with_headers(headers: Iterable[tuple[bytes, bytes]], rid: str) -> list[tuple[bytes, bytes]]:
    """`headers` with the request id (replacing any) and every security header the
    handler did not set itself. Header names of ASGI messages are lower case bytes."""
    kept = [header for header in headers if header[0] != _REQUEST_ID_RAW]
    present = {name for name, _ in kept}
    kept.append((_REQUEST_ID_RAW, rid.encode("latin-1")))
    kept += [header for header in _SECURITY_RAW if header[0] not in present]
    return kept


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and value:
            return str(value.decode("latin-1")[:128])
    return new_request_id()


def _log_access(scope: Scope, rid: str, route: str, status: int, duration: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    client: Any = scope.get("client")
    # A record made directly: Logger.info would first walk the stack for the caller's
    # file and line, which the JSON line does not carry (~2 of the line's ~13 µs).
    record = log.makeRecord(
        log.name,
        logging.INFO,
        __file__,
        0,
        "http",
        (),
        None,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "client": client[0] if client else "",
            "request_id": rid,
        },
    )
    log.handle(record)
