"""The one reconnect loop: follow a peer's stream (or poll it) for ever, backing off.

Every long-lived client of another service (portfolio following executions, risk
following order updates, the strategy runner following candles) runs its attempt
under `Reconnect.forever`: an attempt that fails with a gRPC error or a lost
connection is logged and retried after a jittered, doubling wait, which resets once
the attempt reports progress with `connected()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Never

import grpc

from common.backoff import Backoff

log = logging.getLogger("edgequant.reconnect")

DEFAULT_INITIAL_SECONDS = 0.2
DEFAULT_MAX_SECONDS = 10.0
# What a lost peer raises; anything else is a bug and ends the loop.
RETRIED: tuple[type[BaseException], ...] = (grpc.aio.AioRpcError, ConnectionError, OSError)


class Reconnect:
    def __init__(
        self,
        what: str,
        *,
        initial_seconds: float = DEFAULT_INITIAL_SECONDS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        retried: tuple[type[BaseException], ...] = RETRIED,
    ) -> None:
        self.what = what
        self.backoff = Backoff(initial_seconds, max_seconds)
        self.retried = retried
        self.attempts = 0

    def connected(self) -> None:
        """Called by an attempt once it has made progress: the next failure waits short."""
        self.backoff.reset()

    async def forever(self, attempt: Callable[[], Awaitable[None]]) -> Never:
        """Runs `attempt` again and again; returns only by cancellation or an unexpected error."""
        while True:
            self.attempts += 1
            try:
                await attempt()
            except self.retried as error:
                log.info("peer lost, reconnecting", extra={"peer": self.what, **_detail(error)})
            else:
                log.info("peer stream ended, reconnecting", extra={"peer": self.what})
            await asyncio.sleep(self.backoff.next())


def _detail(error: BaseException) -> dict[str, str]:
    if isinstance(error, grpc.aio.AioRpcError):
        return {"code": error.code().name}
    return {"error": type(error).__name__}
