"""Per-token rate limit: a token bucket per principal, refilled continuously."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from gateway.errors import GatewayError
from gateway.reasons import Reason

# Buckets idle long enough to be full again are dropped, so the map stays small.
_PRUNE_EVERY = 1024


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, rate_per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._calls = 0

    def acquire(self, key: str) -> None:
        """Takes one request from `key`'s bucket; raises 429 with Retry-After when empty."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens < 1:
            retry_after = max(1, math.ceil((1 - bucket.tokens) / self.rate))
            raise GatewayError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                Reason.RATE_LIMITED,
                f"over {self.rate:g} requests/s (burst {self.burst}): retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        bucket.tokens -= 1
        self._calls += 1
        if self._calls % _PRUNE_EVERY == 0:
            self._prune(now)

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated > full_after]:
            del self._buckets[key]
