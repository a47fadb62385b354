"""The gateway's ASGI application: observability outermost, then CORS, then a front door
that sends RPC paths straight to the proxy and everything else to a Starlette app of
fixed routes.

    /healthz       grpc.health.v1 of every service (no token)
    /metrics       Prometheus (no token: bind the gateway where only you can reach it,
                   or scrape it through a firewall rule)
    /openapi.json  OpenAPI 3 from the descriptors; /docs renders it
    /v1/whoami     the presented token's name, scopes and expiry (read scope; gateway.whoami)
    /, /assets/*   the web UI (gateway.ui), with its SPA fallback for page navigations
    anything else  an annotated RPC (gateway.proxy), or 404 / 405 as a google.rpc.Status

Why a front door: an RPC under /v1/ would otherwise pass Starlette's error and
exception middleware, its router (every route's regex, the catch-all last) and the web
UI's checks before reaching the proxy, which answers it all the same (at 50 clients,
a fifth of the gateway's CPU samples were in Starlette). Paths under /v1/ other than
/v1/whoami are the proxy's whatever the method (the UI never answers under /v1/), so
the door sends them there directly. A bug there is logged and answers an INTERNAL
Status (gateway.proxy), where Starlette's error middleware answered text/plain.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from common.config import SERVICE_NAMES, Config
from common.metrics import CONTENT_TYPE
from gateway import docs, openapi, ui, whoami
from gateway.auth import Authenticator, TokenStore
from gateway.bindings import bindings_of, service_descriptors
from gateway.health import SERVING, HealthProbe
from gateway.observability import Metrics, ObservabilityMiddleware
from gateway.proxy import TIMEOUT_HEADER, RpcProxy
from gateway.ratelimit import RateLimiter
from gateway.routing import Router
from gateway.settings import Settings, settings_of
from gateway.streaming import Streams
from gateway.upstream import Upstream

HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
VERSION = "v1"
# Every path under it is an RPC's (or a 404/405 Status), but /v1/whoami (gateway.whoami).
RPC_PREFIX = "/v1/"


class Gateway:
    """The ASGI application: `fixed` (a Starlette app: fixed routes, docs, web UI, with
    the proxy as its fallback) behind the front door, which sends RPC paths to `rpc`."""

    def __init__(
        self, fixed: Starlette, rpc: ASGIApp, metrics: Metrics, settings: Settings
    ) -> None:
        self.fixed = fixed
        self.state = fixed.state
        self._rpc = rpc
        self._app = ObservabilityMiddleware(
            CORSMiddleware(
                self._front_door,
                allow_origins=list(settings.cors.allow_origins),
                allow_methods=HTTP_METHODS,
                allow_headers=["authorization", "content-type", "x-request-id", TIMEOUT_HEADER],
                expose_headers=["x-request-id", "retry-after", "www-authenticate"],
                max_age=settings.cors.max_age_seconds,
            ),
            metrics=metrics,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    async def _front_door(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_rpc_path(scope["path"]):
            await self._rpc(scope, receive, send)
        else:
            await self.fixed(scope, receive, send)

    @property
    def routes(self) -> list[BaseRoute]:
        """The fixed routes (the RPCs' come from the bindings: gateway.routing)."""
        return self.fixed.routes

    def lifespan(self) -> AbstractAsyncContextManager[object]:
        """Start and stop as uvicorn's lifespan does (for a server-less client)."""
        return self.fixed.router.lifespan_context(self.fixed)


def is_rpc_path(path: str) -> bool:
    return path.startswith(RPC_PREFIX) and path != whoami.PATH


def create_app(config: Config) -> Gateway:
    """The gateway for `config`; raises ConfigError (one line naming the key) on bad
    settings, tokens or annotations."""
    settings = settings_of(config.gateway)
    authenticator = Authenticator(settings.auth.enabled, TokenStore(settings.auth))
    bindings = bindings_of(service_descriptors())
    upstream = Upstream(
        {name: config.service(name).address for name in SERVICE_NAMES},
        {binding.rpc.full_name: binding.rpc for binding in bindings}.values(),
        config.grpc,
    )
    streams = Streams()
    limiter = RateLimiter(settings.limits.rate_per_second, settings.limits.burst)
    proxy = RpcProxy(
        Router(bindings),
        upstream,
        authenticator,
        limiter,
        settings,
        streams=streams,
    )
    who_am_i = whoami.WhoAmI(authenticator, limiter)
    probe = HealthProbe(
        {name: config.service(name).address for name in SERVICE_NAMES},
        config.gateway.health_timeout_seconds,
        config.grpc,
    )
    metrics = Metrics()
    web_ui = ui.WebUi(proxy.__call__)
    spec = json.dumps(openapi.document(bindings, "EdgeQuant", VERSION)).encode()

    async def healthz(_request: Request) -> JSONResponse:
        services = await probe.check()
        serving = all(status == SERVING for status in services.values())
        return JSONResponse(
            {"status": SERVING if serving else "NOT_SERVING", "services": services},
            status_code=200 if serving else 503,
        )

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def openapi_json(_request: Request) -> Response:
        return Response(spec, media_type="application/json")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await probe.close()
        await upstream.close()

    fixed = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/metrics", metrics_endpoint),
            Route("/openapi.json", openapi_json),
            Route(whoami.PATH, who_am_i.__call__, methods=HTTP_METHODS),
            *docs.routes(),
            Route("/{path:path}", web_ui.__call__, methods=HTTP_METHODS),
        ],
        lifespan=lifespan,
    )
    # "{path:path}" matches no path with a newline in it (%0A): Starlette would answer a
    # text/plain 404. The proxy takes those too, so every answer is a google.rpc.Status.
    fixed.router.default = request_response(web_ui.__call__)
    fixed.state.streams = streams  # gateway.main ends them when a stop begins
    return Gateway(fixed, proxy.asgi, metrics, settings)
