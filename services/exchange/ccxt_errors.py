"""ccxt's exceptions -> EdgeQuant errors (DESIGN.md's table), most specific class first.

ccxt's hierarchy nests in ways that matter: OrderNotFound and OrderImmediatelyFillable
are InvalidOrders; RateLimitExceeded and DDoSProtection are NetworkErrors (and since
ccxt 4.5 RateLimitExceeded no longer derives from DDoSProtection). So the table is
ordered and matched with isinstance, first hit wins. Messages carry the exchange id and
the ccxt class, never keys or signed URLs.
"""

from __future__ import annotations

from typing import Any

from common.errors import (
    EdgeQuantError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
)
from services.exchange.reasons import Reason

# (ccxt class name, EdgeQuant error, reason); order matters.
TABLE: tuple[tuple[str, type[EdgeQuantError], Reason], ...] = (
    ("InsufficientFunds", FailedPrecondition, Reason.INSUFFICIENT_FUNDS),
    ("OrderNotFound", NotFound, Reason.ORDER_NOT_FOUND),
    ("OrderImmediatelyFillable", FailedPrecondition, Reason.POST_ONLY_WOULD_TAKE),
    ("InvalidOrder", InvalidArgument, Reason.VENUE_INVALID_ORDER),
    ("BadSymbol", InvalidArgument, Reason.UNKNOWN_SYMBOL),
    ("BadRequest", InvalidArgument, Reason.VENUE_BAD_REQUEST),
    ("PermissionDenied", PermissionDenied, Reason.VENUE_PERMISSION_DENIED),
    ("AuthenticationError", PermissionDenied, Reason.VENUE_AUTHENTICATION),
    ("RateLimitExceeded", ResourceExhausted, Reason.VENUE_RATE_LIMITED),
    ("DDoSProtection", ResourceExhausted, Reason.VENUE_DDOS_PROTECTION),
    ("RequestTimeout", Unavailable, Reason.VENUE_TIMEOUT),
    ("ExchangeNotAvailable", Unavailable, Reason.VENUE_UNAVAILABLE),
    ("NetworkError", Unavailable, Reason.VENUE_NETWORK_ERROR),
    ("NotSupported", Unimplemented, Reason.VENUE_NOT_SUPPORTED),
    ("BadResponse", Unavailable, Reason.VENUE_BAD_RESPONSE),
    ("ExchangeError", FailedPrecondition, Reason.VENUE_REJECTED),
    ("BaseError", Unavailable, Reason.VENUE_ERROR),
)

# Failures a read may be retried on: the venue may answer next time.
RETRYABLE = ("NetworkError", "BadResponse")

# Errors that prove an order create was refused (by the venue, or by ccxt before
# sending): the order does not exist. Anything else (a 5xx, a rate limit, a venue's
# "system error", no answer, an unparsable one) leaves its outcome unknown.
REFUSALS = (
    "InsufficientFunds",
    "BadSymbol",
    "BadRequest",
    "AuthenticationError",
    "PermissionDenied",
    "AccountSuspended",
    "OperationRejected",
    "ArgumentsRequired",
    "NotSupported",
    "InvalidOrder",
)
# InvalidOrders that do not prove a refusal: a duplicate id means an order with it
# exists; "not found" answers a create with nothing about the order.
_NOT_REFUSALS = ("DuplicateOrderId", "OrderNotFound")


def translate(ccxt: Any, error: Exception, exchange_id: str) -> EdgeQuantError:
    """The EdgeQuant error for a ccxt exception (`ccxt` is the imported ccxt module)."""
    for name, cls, reason in TABLE:
        if isinstance(error, getattr(ccxt, name)):
            summary = _summary(error)
            message = f"{exchange_id}: {name}: {summary}"
            metadata = {"venue_error": type(error).__name__}
            if cls is InvalidArgument:
                return InvalidArgument((), message=message, reason=reason)
            return cls(message, reason=reason, metadata=metadata)
    raise error


def proves_refusal(ccxt: Any, error: Exception) -> bool:
    """True when `error`, raised by a create, proves the order was not placed."""
    if isinstance(error, _classes(ccxt, _NOT_REFUSALS)):
        return False
    return isinstance(error, _classes(ccxt, REFUSALS))


def _classes(ccxt: Any, names: tuple[str, ...]) -> tuple[type, ...]:
    return tuple(getattr(ccxt, name) for name in names if hasattr(ccxt, name))


def is_retryable(ccxt: Any, error: Exception) -> bool:
    return isinstance(error, tuple(getattr(ccxt, name) for name in RETRYABLE))


def _summary(error: Exception) -> str:
    """The first line of ccxt's message, without URLs (signed ones carry signatures)."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    words = [word for word in text.split() if "://" not in word and "signature=" not in word]
    return " ".join(words)[:200]
