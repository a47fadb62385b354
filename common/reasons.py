"""Stable reasons (google.rpc.ErrorInfo.reason) that more than one service gives.

Clients branch on reasons, so a value never changes once released. Each service keeps
its own in `services/<name>/reasons.py`, a `Reason` StrEnum of the same form: one
member per reason, a comment saying when it is given and what the caller should do.
"""

from __future__ import annotations

from enum import StrEnum


class CommonReason(StrEnum):
    # A stream subscriber fell behind and was cut: re-read the state, then resubscribe.
    STREAM_OVERFLOW = "STREAM_OVERFLOW"
