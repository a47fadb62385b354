"""The token bucket behind the per-token rate limit (a fake clock: no waiting)."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_429_with_retry_after_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=2, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("token:ui")
    with pytest.raises(GatewayError) as raised:
        limiter.acquire("token:ui")
    assert raised.value.http_status == 429
    assert raised.value.reason == "RATE_LIMITED"
    assert raised.value.headers["Retry-After"] == "1"
    clock.now += 0.5  # one request's worth at 2/s
    limiter.acquire("token:ui")
    with pytest.raises(GatewayError):
        limiter.acquire("token:ui")


def test_each_key_has_its_own_bucket() -> None:
    limiter = RateLimiter(rate_per_second=1, burst=1, clock=Clock())
    limiter.acquire("token:ui")
    limiter.acquire("token:bot")
    with pytest.raises(GatewayError):
        limiter.acquire("token:ui")


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    limiter = RateLimiter(rate_per_second=0.1, burst=1, clock=Clock())
    limiter.acquire("k")
    with pytest.raises(GatewayError) as raised:
        limiter.acquire("k")
    assert raised.value.headers["Retry-After"] == "10"
