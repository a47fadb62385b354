"""gRPC status -> HTTP response, in one place.

The body of every error is the `google.rpc.Status` as JSON, details included (the
`ErrorInfo` reason, `BadRequest` field violations), whether the status came from a
service or from the gateway itself (401, 403, 413, 429, ...). The HTTP status follows
the canonical table grpc-gateway and Envoy share (DESIGN.md, Gateway).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2
from starlette.responses import Response

from common.errors import EdgeQuantError, peer_status, to_status

# grpc-gateway's HTTPStatusFromCode; Envoy's transcoder uses the same table.
HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
JSON = "application/json"


class GatewayError(EdgeQuantError):
    """An error the gateway answers itself, before or instead of an RPC.

    `http_status` overrides the table where HTTP has a closer word than gRPC (413 for
    a body over the limit, 405 for a path bound to another method).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        *,
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.code = code
        self.http_status = http_status or HTTP_STATUS.get(code, 500)
        self.headers = dict(headers or {})


def http_status(code: int) -> int:
    """The HTTP status for a gRPC status code number (unknown codes: 500)."""
    status_code = _BY_NUMBER.get(code)
    return 500 if status_code is None else HTTP_STATUS.get(status_code, 500)


def status_of_rpc_error(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The `google.rpc.Status` a service sent (its details trailer), or one built from
    the bare code and message when it sent none (a channel that could not connect)."""
    status = peer_status(error)
    if status is not None and status.code == error.code().value[0]:
        return status
    return status_pb2.Status(code=error.code().value[0], message=error.details() or "")


def status_json(status: status_pb2.Status) -> bytes:
    """Compact, as every other body the gateway writes (gateway.transcoding)."""
    document = json_format.MessageToDict(status)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def status_response(
    status: status_pb2.Status,
    *,
    http_status_code: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        status_json(status),
        status_code=http_status_code or http_status(status.code),
        media_type=JSON,
        headers=dict(headers or {}),
    )


def error_response(error: EdgeQuantError) -> Response:
    """The response for an error raised in the gateway (a GatewayError or any
    EdgeQuantError, e.g. InvalidArgument with field violations from transcoding)."""
    if isinstance(error, GatewayError):
        return status_response(
            to_status(error), http_status_code=error.http_status, headers=error.headers
        )
    return status_response(to_status(error))
