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
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders
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
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID] = rid
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.metrics.in_flight.dec()
            duration = time.perf_counter() - started
            route = scope.get(ROUTE_KEY) or (path if (path := scope["path"]) in FIXED else "-")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(duration)
            _log_access(scope, rid, route, status, duration)
            request_id.reset(token)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and value:
            return str(value.decode("latin-1")[:128])
    return new_request_id()


def _log_access(scope: Scope, rid: str, route: str, status: int, duration: float) -> None:
    client: Any = scope.get("client")
    log.info(
        "http",
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
