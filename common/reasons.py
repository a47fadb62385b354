"""Stable reasons (google.rpc.ErrorInfo.reason) that more than one service gives.

Clients branch on reasons, so a value never changes once released. Each service keeps
its own in `services/<name>/reasons.py`, a `Reason` StrEnum of the same form: one
member per reason, a comment saying when it is given and what the caller should do.
"""

from __future__ import annotations

from enum import StrEnum


class CommonReason(StrEnum):
    # A bug: nothing of the failure leaves the process (its log has the traceback).
    INTERNAL = "INTERNAL"
    # The request's bytes are not a protobuf message of the RPC's type.
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    # The work would take the process over its memory soft limit: retry later or ask for less.
    MEMORY_BUDGET = "MEMORY_BUDGET"
    # The RPC lands with a later issue (metadata names it).
    NOT_YET_IMPLEMENTED = "NOT_YET_IMPLEMENTED"
    # A stream subscriber fell behind and was cut: re-read the state, then resubscribe.
    STREAM_OVERFLOW = "STREAM_OVERFLOW"
    # The service is stopping (a stop, a restart, a deploy): reconnect; nothing failed.
    SERVICE_STOPPING = "SERVICE_STOPPING"
