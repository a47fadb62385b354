"""The Starlette application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from common.config import SERVICE_NAMES, Config
from gateway.health import SERVING, HealthProbe


def create_app(config: Config) -> Starlette:
    probe = HealthProbe(
        {name: config.service(name).address for name in SERVICE_NAMES},
        config.gateway.health_timeout_seconds,
    )

    async def healthz(_request: Request) -> JSONResponse:
        services = await probe.check()
        serving = all(status == SERVING for status in services.values())
        return JSONResponse(
            {"status": SERVING if serving else "NOT_SERVING", "services": services},
            status_code=200 if serving else 503,
        )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await probe.close()

    return Starlette(routes=[Route("/healthz", healthz)], lifespan=lifespan)
