from __future__ import annotations

import subprocess
import sys

import pytest

from common.errors import ResourceExhausted
from common.memory import MIB, MemoryGuard, footprint, rss_bytes


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


def test_footprint_counts_private_pages_in_uss_and_pss() -> None:
    before = footprint()
    held = bytearray(32 * MIB)
    held[::4096] = b"x" * len(held[::4096])  # touch every page: private and resident
    after = footprint()
    assert after.uss - before.uss >= 30 * MIB
    assert after.pss - before.pss >= 30 * MIB
    assert after.uss <= after.pss <= after.rss
    del held


def test_footprint_splits_what_a_process_shares_with_another() -> None:
    # Two interpreters map the same libpython and extension files: each pays a part of
    # those pages in PSS, all of them in RSS, none in USS.
    with subprocess.Popen(
        [sys.executable, "-c", "import sys, time; print('up', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    ) as child:  # closes its pipe: no ResourceWarning
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"up\n"
            measured = footprint(child.pid)
            assert measured.uss < measured.pss < measured.rss
        finally:
            child.kill()
