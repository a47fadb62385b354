"""The stable reasons (google.rpc.ErrorInfo.reason) the portfolio service gives.

Clients branch on these, so a value never changes once released. Reasons several
services give (STREAM_OVERFLOW) are in common.reasons.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # NOT_FOUND: the request names no account the ledger keeps; ListAccounts names them
    # (one per venue of the exchange, and any an import created).
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
