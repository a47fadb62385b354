"""The stable reasons (google.rpc.ErrorInfo.reason) the gateway itself gives; those of
the services pass through unchanged. Same form as services/<name>/reasons.py."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # 401: no bearer token (Authorization header or ?access_token= on streams).
    MISSING_TOKEN = "MISSING_TOKEN"  # noqa: S105 - a reason, not a secret
    # 401: the token is not one of the tokens file's (or was revoked).
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - a reason, not a secret
    # 401: the token's `expires` has passed: make a new one.
    TOKEN_EXPIRED = "TOKEN_EXPIRED"  # noqa: S105 - a reason, not a secret
    # 403: the token lacks the scope the route needs (README "A token").
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"
    # 429: over the token's rate; retry after the Retry-After header's seconds.
    RATE_LIMITED = "RATE_LIMITED"
    # 413: the body is over [gateway.limits] max_body_bytes.
    BODY_TOO_LARGE = "BODY_TOO_LARGE"
    # 405: the path is bound, with other HTTP methods (the Allow header lists them).
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    # 404: no RPC is bound to the path.
    NO_ROUTE = "NO_ROUTE"
    # 400: the body is not JSON.
    MALFORMED_JSON = "MALFORMED_JSON"
