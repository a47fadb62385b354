from __future__ import annotations

import pytest

from common.errors import ResourceExhausted
from common.memory import MIB, MemoryGuard, rss_bytes


def test_rss_grows_with_allocation() -> None:
    before = rss_bytes()
    block = bytearray(64 * MIB)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    assert rss_bytes() - before >= 48 * MIB
    del block


def test_guard_admits_work_under_the_soft_limit() -> None:
    guard = MemoryGuard(budget_mib=rss_bytes() // MIB + 512, soft_limit_ratio=1.0)
    guard.admit("a backtest", extra_bytes=128 * MIB)


def test_guard_refuses_work_that_would_pass_the_soft_limit() -> None:
    guard = MemoryGuard(budget_mib=rss_bytes() // MIB + 100, soft_limit_ratio=1.0)
    with pytest.raises(ResourceExhausted) as raised:
        guard.admit("a backtest", extra_bytes=200 * MIB)
    assert raised.value.reason == "MEMORY_BUDGET"
    assert "a backtest refused" in raised.value.message
