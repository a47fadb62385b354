"""The endpoint behind every annotated RPC: route, authorize, transcode, call, answer.

    request -> Router (binding + path variables) -> Authenticator (scope of the RPC)
    -> RateLimiter (per token) -> body (size limit) -> transcoding (JSON -> proto)
    -> Upstream (grpc.aio, x-request-id, x-actor, deadline) -> JSON, SSE or NDJSON

Every failure on the way answers a google.rpc.Status with the mapped HTTP status.
"""

from __future__ import annotations

import logging
import re

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from common.errors import EdgeQuantError, FieldViolation, InvalidArgument, internal_status
from gateway.auth import Authenticator, required_scope
from gateway.bindings import Binding
from gateway.errors import JSON, GatewayError, error_response, status_of_rpc_error, status_response
from gateway.observability import ROUTE_KEY
from gateway.ratelimit import RateLimiter
from gateway.reasons import Reason
from gateway.routing import Router
from gateway.settings import Settings
from gateway.streaming import Streams, stream_response
from gateway.transcoding import request_message, response_json
from gateway.upstream import Upstream

log = logging.getLogger("edgequant.gateway")

# The header grpc-gateway reads a client's deadline from: "<digits><unit>", unit one of
# H M S m u n (gRPC over HTTP/2's grpc-timeout).
TIMEOUT_HEADER = "grpc-timeout"
_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


class RpcProxy:
    def __init__(
        self,
        router: Router,
        upstream: Upstream,
        authenticator: Authenticator,
        limiter: RateLimiter,
        settings: Settings,
        *,
        streams: Streams,
    ) -> None:
        self.router = router
        self.upstream = upstream
        self.authenticator = authenticator
        self.limiter = limiter
        self.settings = settings
        self.streams = streams

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except EdgeQuantError as error:
            return error_response(error)

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The proxy as an ASGI app, for the front door (gateway.app). A bug before the
        answer starts is logged and answers 500 with an INTERNAL Status (through the
        middleware, so with the request id); one after it (a stream) ends the response."""
        try:
            response = await self(Request(scope, receive))
        except Exception:
            log.exception("unexpected error on an RPC path")
            response = status_response(internal_status())
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        binding, path_values = self.router.match(request.method, raw_path)
        request.scope[ROUTE_KEY] = f"{binding.http_method} {binding.template.text}"
        client = request.client.host if request.client else "unknown"
        principal = self.authenticator.authenticate(
            request.headers.get("authorization"),
            request.query_params.get("access_token"),
            client,
            required_scope(binding),
        )
        self.limiter.acquire(principal.rate_key)
        body = await self._body(request) if binding.body else b""
        message = request_message(binding, path_values, request.query_params.multi_items(), body)
        metadata = (
            ("x-request-id", str(request.scope.get("state", {}).get("request_id", ""))),
            ("x-actor", principal.name),
        )
        timeout = self._timeout(request, binding)
        if binding.rpc.server_streaming:
            call = self.upstream.stream(binding.rpc, message, metadata, timeout)
            answer = await stream_response(
                call,
                request.headers.get("accept", ""),
                self.settings.calls.heartbeat_seconds,
                self.streams,
            )
            if isinstance(answer, grpc.aio.AioRpcError):
                return status_response(status_of_rpc_error(answer))
            return answer
        return await self._unary(binding, message, metadata, timeout)

    async def _unary(
        self,
        binding: Binding,
        message: object,
        metadata: tuple[tuple[str, str], ...],
        deadline_seconds: float | None,
    ) -> Response:
        try:
            response = await self.upstream.unary(binding.rpc, message, metadata, deadline_seconds)
        except grpc.aio.AioRpcError as error:
            return status_response(status_of_rpc_error(error))
        return Response(response_json(binding, response), media_type=JSON)

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.limits.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def _timeout(self, request: Request, binding: Binding) -> float | None:
        calls = self.settings.calls
        header = request.headers.get(TIMEOUT_HEADER)
        if header is None:
            return None if binding.rpc.server_streaming else calls.default_timeout_seconds
        found = _TIMEOUT.match(header.strip())
        if not found:
            raise InvalidArgument(
                [FieldViolation(TIMEOUT_HEADER, "expected <digits><H|M|S|m|u|n>, e.g. 5S")]
            )
        seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
        return min(seconds, calls.max_timeout_seconds)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        Reason.BODY_TOO_LARGE,
        f"the request body is over {limit} bytes",
        http_status=413,
    )
