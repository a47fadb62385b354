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
call is cancelled with it, so the service stops producing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message
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
        status = status_json(status_of_rpc_error(error))
        if self.media_type == SSE:
            return b"event: error\ndata: " + status + b"\n\n"
        return b'{"error":' + status + b"}\n"

    def heartbeat(self) -> bytes:
        # SSE comments are ignored by EventSource; a blank line is ignored by NDJSON readers.
        return b": keepalive\n\n" if self.media_type == SSE else b"\n"


async def stream_response(
    call: grpc.aio.UnaryStreamCall[Any, Any], accept: str, heartbeat_seconds: float
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
        _events(call, first, framing, heartbeat_seconds),
        media_type=framing.media_type,
        headers=_HEADERS,
    )


async def _events(
    call: grpc.aio.UnaryStreamCall[Any, Any],
    pending: asyncio.Future[Any],
    framing: Framing,
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_seconds)
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
        if not pending.done():
            pending.cancel()
