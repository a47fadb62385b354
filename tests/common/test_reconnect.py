import asyncio

import pytest

from common.reconnect import Reconnect


async def test_a_failed_attempt_is_retried_and_progress_resets_the_wait() -> None:
    reconnect = Reconnect("peer", initial_seconds=0.001, max_seconds=0.004)
    outcomes: list[str] = []

    async def attempt() -> None:
        if reconnect.attempts < 4:
            outcomes.append("lost")
            raise ConnectionError("peer went away")
        reconnect.connected()
        outcomes.append("connected")
        raise asyncio.CancelledError  # stop the loop as a shutdown would

    with pytest.raises(asyncio.CancelledError):
        await reconnect.forever(attempt)
    assert outcomes == ["lost", "lost", "lost", "connected"]
    assert reconnect.backoff.next() <= 0.001  # reset to the initial step


async def test_an_unexpected_error_ends_the_loop() -> None:
    reconnect = Reconnect("peer", initial_seconds=0.001)

    async def attempt() -> None:
        raise ValueError("a bug, not a lost peer")

    with pytest.raises(ValueError, match="a bug"):
        await reconnect.forever(attempt)
    assert reconnect.attempts == 1
