"""GET /v1/whoami: the token a request presents, as the web UI needs it to decide what to
enable: its name, its scopes and its expiry. Served by the gateway itself (no service
knows tokens), with the lowest scope (read), rate limited like every RPC.

The answer never holds the token or its digest. With auth off (loopback development)
the caller is "anonymous" with every scope and no expiry, as the proxy treats it.
"""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from common.errors import EdgeQuantError
from gateway.auth import READ, SCOPES, Authenticator
from gateway.errors import GatewayError, error_response
from gateway.observability import ROUTE_KEY
from gateway.ratelimit import RateLimiter

PATH = "/v1/whoami"
SCOPE = READ
SUMMARY = "The presented token: its name, scopes and expiry"
_STATUS_REF = "#/components/schemas/google.rpc.Status"


class WhoAmI:
    def __init__(self, authenticator: Authenticator, limiter: RateLimiter) -> None:
        self.authenticator = authenticator
        self.limiter = limiter

    async def __call__(self, request: Request) -> Response:
        try:
            return self._answer(request)
        except EdgeQuantError as error:
            return error_response(error)

    def _answer(self, request: Request) -> Response:
        request.scope[ROUTE_KEY] = f"GET {PATH}"
        if request.method != "GET":
            raise GatewayError(
                grpc.StatusCode.UNIMPLEMENTED,
                "METHOD_NOT_ALLOWED",
                f"{request.method} is not bound to {PATH}; use GET",
                http_status=405,
                headers={"Allow": "GET"},
            )
        principal = self.authenticator.authenticate(
            request.headers.get("authorization"),
            request.query_params.get("access_token"),
            request.client.host if request.client else "unknown",
            SCOPE,
        )
        self.limiter.acquire(principal.rate_key)
        expires = principal.expires
        return JSONResponse(
            {
                "name": principal.name,
                "scopes": [scope for scope in SCOPES if scope in principal.scopes],
                "expires_at": None
                if expires is None
                else expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
            },
            headers={"Cache-Control": "no-store"},
        )


def operation() -> dict[str, Any]:
    """The OpenAPI operation, described like the RPCs' (x-required-scope, Status errors)."""
    return {
        "operationId": "Gateway_WhoAmI",
        "tags": ["Gateway"],
        "summary": SUMMARY,
        "description": f"{SUMMARY}, as the gateway knows it (never the token or its hash); "
        'with auth off, "anonymous" with every scope. Served by the gateway, not a service. '
        f"Needs a token with the `{SCOPE}` scope.",
        "x-required-scope": SCOPE,
        "parameters": [],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["name", "scopes", "expires_at"],
                            "properties": {
                                "name": {"type": "string"},
                                "scopes": {
                                    "type": "array",
                                    "items": {"type": "string", "enum": list(SCOPES)},
                                },
                                "expires_at": {
                                    "type": "string",
                                    "format": "date-time",
                                    "nullable": True,
                                },
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "default": {
                "description": "An error: google.rpc.Status, HTTP status by the canonical table.",
                "content": {"application/json": {"schema": {"$ref": _STATUS_REF}}},
            },
        },
    }
