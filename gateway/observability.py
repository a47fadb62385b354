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

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.logs import new_request_id, request_id

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
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edgequant_gateway_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "edgequant_gateway_request_duration_seconds",
            "Time to the end of the response (of the stream, for streaming RPCs).",
            ("route",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "edgequant_gateway_requests_in_flight",
            "Requests being answered, open streams included.",
            registry=self.registry,
        )
        # The labelled children, kept: prometheus_client's labels() validates and locks
        # on every call. As many as the registry holds (few: see FIXED).
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def observe(self, route: str, method: str, status: int, duration: float) -> None:
        counter = self._counted.get((route, method, status))
        if counter is None:
            counter = self._counted[(route, method, status)] = self.requests.labels(
                route, method, str(status)
            )
        counter.inc()
        histogram = self._timed.get(route)
        if histogram is None:
            histogram = self._timed[route] = self.latency.labels(route)
        histogram.observe(duration)


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

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.metrics.in_flight.dec()
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
