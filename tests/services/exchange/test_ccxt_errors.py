"""ccxt's exceptions map to DESIGN.md's gRPC codes, the most specific class winning."""

from __future__ import annotations

import ccxt.async_support as ccxt
import grpc
import pytest

from services.exchange.ccxt_errors import is_retryable, translate


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (ccxt.InsufficientFunds("x"), grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS"),
        (ccxt.OrderNotFound("x"), grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND"),
        (ccxt.InvalidOrder("x"), grpc.StatusCode.INVALID_ARGUMENT, "VENUE_INVALID_ORDER"),
        (ccxt.BadSymbol("x"), grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_SYMBOL"),
        (ccxt.BadRequest("x"), grpc.StatusCode.INVALID_ARGUMENT, "VENUE_BAD_REQUEST"),
        (ccxt.AuthenticationError("x"), grpc.StatusCode.PERMISSION_DENIED, "VENUE_AUTHENTICATION"),
        (ccxt.PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED, "VENUE_PERMISSION_DENIED"),
        (ccxt.RateLimitExceeded("x"), grpc.StatusCode.RESOURCE_EXHAUSTED, "VENUE_RATE_LIMITED"),
        (ccxt.DDoSProtection("x"), grpc.StatusCode.RESOURCE_EXHAUSTED, "VENUE_DDOS_PROTECTION"),
        (ccxt.RequestTimeout("x"), grpc.StatusCode.UNAVAILABLE, "VENUE_TIMEOUT"),
        (ccxt.ExchangeNotAvailable("x"), grpc.StatusCode.UNAVAILABLE, "VENUE_UNAVAILABLE"),
        (ccxt.NetworkError("x"), grpc.StatusCode.UNAVAILABLE, "VENUE_NETWORK_ERROR"),
        (ccxt.NotSupported("x"), grpc.StatusCode.UNIMPLEMENTED, "VENUE_NOT_SUPPORTED"),
        (
            ccxt.OrderImmediatelyFillable("x"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "POST_ONLY_WOULD_TAKE",
        ),
    ],
)
def test_each_ccxt_error_has_its_code(error: Exception, code: grpc.StatusCode, reason: str) -> None:
    translated = translate(ccxt, error, "binance")

    assert (translated.code, translated.reason) == (code, reason)


def test_rate_limit_is_matched_by_its_own_class() -> None:
    # ccxt 4.5 moved RateLimitExceeded out from under DDoSProtection.
    assert not isinstance(ccxt.RateLimitExceeded("x"), ccxt.DDoSProtection)
    assert translate(ccxt, ccxt.RateLimitExceeded("x"), "binance").reason == "VENUE_RATE_LIMITED"


def test_messages_leave_signed_urls_out() -> None:
    error = ccxt.ExchangeNotAvailable(
        "binance GET https://api.binance.com/api/v3/account?timestamp=1&signature=abc 503"
    )

    assert "signature" not in translate(ccxt, error, "binance").message


def test_only_what_may_answer_next_time_is_retried() -> None:
    assert is_retryable(ccxt, ccxt.RequestTimeout("x"))
    assert is_retryable(ccxt, ccxt.RateLimitExceeded("x"))
    assert not is_retryable(ccxt, ccxt.InsufficientFunds("x"))
    assert not is_retryable(ccxt, ccxt.AuthenticationError("x"))
