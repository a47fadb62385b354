"""The server interceptor every service runs: request id, error translation, access log,
and the RPC metrics (common.metrics: count by method and code, latency).

Servicers raise `EdgeQuantError`s; this is where they become a `google.rpc.Status` on
the wire (grpc-status-details-bin), so no servicer builds a status by hand. Any other
exception is a bug: it is logged with its traceback and answered as a bare INTERNAL.

Request bytes that are not a valid protobuf message of the RPC's type are the caller's
fault: they are answered INVALID_ARGUMENT (`MALFORMED_REQUEST`). Left to grpcio, the
DecodeError would surface as UNKNOWN with the parser's text.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from common.errors import (
    EdgeQuantError,
    FieldViolation,
    InvalidArgument,
    Unavailable,
    internal_status,
    to_status,
)
from common.logs import new_request_id, request_id
from common.metrics import ServiceMetrics
from common.reasons import CommonReason

log = logging.getLogger("edgequant.rpc")

REQUEST_ID_HEADER = "x-request-id"
# What a subscription ends with when its server stops: a reason a client can tell from a
# failure (it reconnects either way).
STOPPING = Unavailable("the service is stopping; reconnect", reason=CommonReason.SERVICE_STOPPING)

Behavior = Callable[..., Any]
if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]


class LiveStreams:
    """The service's own server streams in progress: subscriptions (executions, order
    updates, tickers) that never end by themselves. A stopping server ends them at once
    (`end`), or its graceful stop would wait its whole grace period for them."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.ending = False

    def end(self) -> None:
        """Ends each stream with UNAVAILABLE: its client reconnects to the next process."""
        self.ending = True
        for task in self.tasks:
            task.cancel()


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: ServiceMetrics | None = None) -> None:
        self.streams = LiveStreams()
        self.metrics = metrics
        # Each method's wrapped handler, built once (with the handler it wraps): the request
        # id is read in the call, so nothing here differs from one call to the next.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Handler, method: str) -> Handler:
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method, self.metrics),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method, self._streams_of(method), self.metrics),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # No client-streaming RPCs in the contract.

    def _streams_of(self, method: str) -> LiveStreams | None:
        # grpc.health.v1's Watch must still carry NOT_SERVING to its watchers at a stop.
        return None if method.startswith("/grpc.") else self.streams


class _Undecodable:
    """Stands in for a request whose bytes did not parse: a deserializer cannot abort
    the call, so the wrapped behavior answers for it."""


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except DecodeError:
            return _Undecodable()

    return deserialize


def _check_decoded(request: Any) -> None:
    if isinstance(request, _Undecodable):
        raise InvalidArgument(
            [FieldViolation("request", "is not a valid protobuf message of this RPC's type")],
            reason=CommonReason.MALFORMED_REQUEST,
        )


def _request_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and value:
            return value[:128]
    return new_request_id()


def _wrap_unary(behavior: Behavior, method: str, metrics: ServiceMetrics | None) -> Behavior:
    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        request_id.set(_request_id(context.invocation_metadata()))
        started = time.perf_counter()
        try:
            _check_decoded(request)
            return await behavior(request, context)
        except Exception as error:
            await _abort(context, method, error)
        finally:
            _finished(method, context, started, metrics)

    return unary


def _wrap_stream(
    behavior: Behavior, method: str, live: LiveStreams | None, metrics: ServiceMetrics | None
) -> Behavior:
    """Accepts both shapes of streaming handler: an async iterator of responses, or a
    coroutine that writes them itself (as grpc.health.v1's Watch does)."""

    async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        request_id.set(_request_id(context.invocation_metadata()))
        started = time.perf_counter()
        task = asyncio.current_task()
        if live is not None and task is not None:
            live.tasks.add(task)
        try:
            _check_decoded(request)
            responses = behavior(request, context)
            if inspect.isawaitable(responses):
                await responses
            else:
                async for response in responses:
                    await context.write(response)
        except asyncio.CancelledError:
            if live is None or not live.ending:
                raise
            await _abort(context, method, STOPPING)
        except Exception as error:
            await _abort(context, method, error)
        finally:
            if live is not None and task is not None:
                live.tasks.discard(task)
            _finished(method, context, started, metrics)

    return stream


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], method: str, error: Exception
) -> None:
    if isinstance(error, grpc.aio.AbortError):
        raise error
    if isinstance(error, EdgeQuantError):
        status = rpc_status.to_status(to_status(error))
    else:
        log.exception("unhandled error in %s", method)
        status = rpc_status.to_status(internal_status())
    await context.abort(status.code, status.details, status.trailing_metadata)


def _finished(
    method: str,
    context: grpc.aio.ServicerContext[Any, Any],
    started: float,
    metrics: ServiceMetrics | None,
) -> None:
    """Counts the RPC; logs failed ones at INFO, successful ones at DEBUG (the hot path
    stays quiet)."""
    seconds = time.perf_counter() - started
    code = context.code() or grpc.StatusCode.OK
    code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
    if metrics is not None:
        metrics.rpc(method, code_name, seconds)
    level = logging.DEBUG if code == grpc.StatusCode.OK else logging.INFO
    if log.isEnabledFor(level):
        log.log(
            level,
            "rpc",
            extra={"method": method, "code": code_name, "duration_ms": round(seconds * 1000, 3)},
        )
