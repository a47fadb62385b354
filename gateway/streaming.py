"""Server-streaming RPCs over HTTP: Server-Sent Events, or NDJSON on request.

- SSE (the default, what EventSource asks for): one `data:` event per message, the
  message in the JSON mapping; a failed stream ends with `event: error` whose data is
  the google.rpc.Status; comment lines every `heartbeat_seconds` keep it alive.
- NDJSON (`Accept: application/x-ndjson`): grpc-gateway's framing, one
  `{"result": message}` per line and `{"error": status}` last if the stream failed.

The HTTP status is decided by the stream's first event: an RPC that fails at once
(UNIMPLEMENTED, NOT_FOUND, a service down) answers with the mapped status and the
Status body, like a unary call. After that the status is 200 and errors travel in the
stream. When the client goes away, Starlette cancels the body iterator and the gRPC
call is cancelled with it, so the service stops producing. When the gateway stops, every
open stream ends at once with an UNAVAILABLE error event ("reconnect"), as a stopping
service ends its subscriptions: uvicorn would otherwise wait for each client to leave.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from starlette.responses import Response, StreamingResponse

from gateway.errors import status_json, status_of_rpc_error
from gateway.transcoding import message_json

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
# How long the first event may take before the response starts as 200 regardless:
# long enough for an immediate failure to arrive, short enough not to hold the
# headers of a quiet stream (order updates) back from the browser.
FIRST_EVENT_SECONDS = 0.25
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_STOPPING = status_pb2.Status(
    code=code_pb2.UNAVAILABLE, message="the gateway is stopping; reconnect"
)


class Streams:
    """The gateway's open streams: `end()` (at the start of a stop) ends them all."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    def end(self) -> None:
        self.stopping.set()


def wants_ndjson(accept: str) -> bool:
    return NDJSON in accept or "application/jsonl" in accept


class Framing:
    """How messages, errors and keep-alives are written for one media type."""

    def __init__(self, media_type: str) -> None:
        self.media_type = media_type

    def message(self, message: Message) -> bytes:
        body = message_json(message)
        if self.media_type == SSE:
            return b"data: " + body + b"\n\n"
        return b'{"result":' + body + b"}\n"

    def error(self, error: grpc.aio.AioRpcError) -> bytes:
        return self.status(status_of_rpc_error(error))

    def status(self, status_message: status_pb2.Status) -> bytes:
        status = status_json(status_message)
        if self.media_type == SSE:
            return b"event: error\ndata: " + status + b"\n\n"
        return b'{"error":' + status + b"}\n"

    def heartbeat(self) -> bytes:
        # SSE comments are ignored by EventSource; a blank line is ignored by NDJSON readers.
        return b": keepalive\n\n" if self.media_type == SSE else b"\n"


async def stream_response(
    call: grpc.aio.UnaryStreamCall[Any, Any],
    accept: str,
    heartbeat_seconds: float,
    streams: Streams,
) -> Response | grpc.aio.AioRpcError:
    """The response for a started streaming call, or the RpcError it failed with at once
    (the caller maps that like a unary error)."""
    framing = Framing(NDJSON if wants_ndjson(accept) else SSE)
    first = asyncio.ensure_future(call.read())
    await asyncio.wait({first}, timeout=FIRST_EVENT_SECONDS)
    if first.done() and isinstance(first.exception(), grpc.aio.AioRpcError):
        error = first.exception()
        assert isinstance(error, grpc.aio.AioRpcError)
        return error
    return StreamingResponse(
        _events(call, first, framing, heartbeat_seconds, streams.stopping),
        media_type=framing.media_type,
        headers=_HEADERS,
    )


async def _events(
    call: grpc.aio.UnaryStreamCall[Any, Any],
    pending: asyncio.Future[Any],
    framing: Framing,
    heartbeat_seconds: float,
    stopping: asyncio.Event,
) -> AsyncIterator[bytes]:
    stop = asyncio.ensure_future(stopping.wait())
    try:
        while True:
            done, _ = await asyncio.wait(
                {pending, stop}, timeout=heartbeat_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if stop in done:
                yield framing.status(_STOPPING)
                return
            if not done:
                yield framing.heartbeat()
                continue
            try:
                message = pending.result()
            except grpc.aio.AioRpcError as error:
                yield framing.error(error)
                return
            if message is grpc.aio.EOF:
                return
            yield framing.message(message)
            pending = asyncio.ensure_future(call.read())
    finally:
        # The client went away (or the stream ended): stop the service's work too.
        call.cancel()
        for waiting in (pending, stop):
            if not waiting.done():
                waiting.cancel()
