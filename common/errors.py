"""The exception hierarchy, and the one place it becomes a gRPC status.

Domain code raises these; the error interceptor (common.interceptors) turns them into
a `google.rpc.Status` with an `ErrorInfo` (a stable `reason`) and, for bad input,
`BadRequest` field violations. Each class says what the caller or operator must do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Never

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from common.reasons import CommonReason

DOMAIN = "edgequant"
# The trailer a google.rpc.Status travels in (grpc_status's convention).
DETAILS_TRAILER = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: its path in the request ("quantity", "limits.max_leverage")."""

    field: str
    description: str


class EdgeQuantError(Exception):
    """Base of every error a service answers with. Unexpected ones become INTERNAL."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})


class InvalidArgument(EdgeQuantError):
    """The request is malformed: fix the named fields and send it again."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[FieldViolation],
        *,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.violations = tuple(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message or f"invalid request: {summary}", reason=reason)


class NotFound(EdgeQuantError):
    """The named resource does not exist: check the id."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(EdgeQuantError):
    """A resource with that id exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(EdgeQuantError):
    """The system is not in a state that allows this (funds, trading state): change it first."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Aborted(EdgeQuantError):
    """A concurrent change won: read again and retry."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class ResourceExhausted(EdgeQuantError):
    """Over a rate or memory budget: retry later, or with less work."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class PermissionDenied(EdgeQuantError):
    """The credentials do not allow this: check the API keys or token scope."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unavailable(EdgeQuantError):
    """A dependency (venue, another service) does not answer: retry with backoff."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class DeadlineExceeded(EdgeQuantError):
    """No answer in time; the outcome is unknown: look the result up before retrying."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Unimplemented(EdgeQuantError):
    """The RPC or venue feature is not available in this version."""

    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"


class StartupError(Exception):
    """A process cannot start (bad config, port taken, migration failed).

    Its message is one line that names what to fix; the process exits non-zero.
    """


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: EdgeQuantError) -> status_pb2.Status:
    """The `google.rpc.Status` a caller receives for `error`."""
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    status.details.append(_pack(info))
    if isinstance(error, InvalidArgument) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=violation.field, description=violation.description
                )
                for violation in error.violations
            ]
        )
        status.details.append(_pack(bad_request))
    return status


def peer_status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The `google.rpc.Status` a peer sent with its error (its details trailer); None
    when it sent none (a channel that could not connect)."""
    for key, value in error.trailing_metadata() or ():
        if key == DETAILS_TRAILER and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def reason_of(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a peer's error, what a client branches on ('' when the
    error carries none: a channel that could not connect)."""
    status = peer_status(error)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def internal_status(message: str = "internal error") -> status_pb2.Status:
    """The status for a bug: no detail of the failure leaves the process."""
    info = error_details_pb2.ErrorInfo(reason=CommonReason.INTERNAL, domain=DOMAIN)
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message, details=[_pack(info)])


def not_yet_implemented(rpc: str, issue: int) -> Unimplemented:
    """The answer of an RPC whose implementation lands with a later issue."""
    return Unimplemented(
        f"{rpc} is not implemented yet (issue #{issue})",
        reason=CommonReason.NOT_YET_IMPLEMENTED,
        metadata={"rpc": rpc, "issue": str(issue)},
    )


async def not_yet_implemented_stream(rpc: str, issue: int) -> AsyncIterator[Never]:
    """`not_yet_implemented` for a server-streaming RPC."""
    raise not_yet_implemented(rpc, issue)
    yield  # pragma: no cover - makes this an async generator
