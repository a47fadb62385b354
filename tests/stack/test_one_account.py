"""One truth per account, on the real stack: the exchange, the portfolio and risk agree on
the paper account (the configured [exchange.paper] balances: 100000 USDT and 1 BTC) at
start, after a mixed sequence of fills with fees, and after a restart of each of them.

Agreement is read through each service's own API (tests/stack/account_testing.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from common.testing import Stack, isolated_config, running_stack, supervisor_rpc, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.portfolio.v1 import portfolio_pb2
from tests.stack.account_testing import CONFIGURED, all_agree, connected, market

pytestmark = pytest.mark.stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    # Risk re-reads the portfolio's cash (fees included) every 0.5 s instead of 5 s.
    environment = isolated_config(tmp_path, RISK__FEEDS__PORTFOLIO_REFRESH_SECONDS="0.5")
    async with running_stack(environment) as running:
        yield running


def _restart(stack: Stack, program: str) -> None:
    with supervisor_rpc(stack.config.var_dir / "supervisor.sock") as supervisor:
        supervisor.stopProcess(program)
        supervisor.startProcess(program)


async def test_exchange_portfolio_and_risk_agree_on_the_paper_account(stack: Stack) -> None:
    config = stack.config
    async with connected(config) as stubs:
        # At start: the configured balances, everywhere. The two denials pass.
        await all_agree(stubs, CONFIGURED)
        accounts = await stubs.portfolio.ListAccounts(portfolio_pb2.ListAccountsRequest())
        assert [(a.account_id, a.kind) for a in accounts.accounts] == [
            ("paper", portfolio_pb2.ACCOUNT_KIND_PAPER)
        ]

        # Buys and sells, each paying the taker fee in USDT, each after the agreement on
        # the one before. (A sell stays at most half the holding: risk counts a sell's
        # own PENDING_NEW update beside its check, issue 12 item 6's first point.)
        await market(stubs, "one-truth-1", common_pb2.SIDE_BUY, "0.3")
        await all_agree(stubs)
        await market(stubs, "one-truth-2", common_pb2.SIDE_SELL, "0.6")
        await all_agree(stubs)
        await market(stubs, "one-truth-3", common_pb2.SIDE_BUY, "0.05")
        after_fills = await all_agree(stubs)
        assert after_fills["BTC"] == Decimal("0.75")
        assert after_fills["USDT"] > CONFIGURED["USDT"]  # sold 0.25 BTC net

        for program in ("exchange", "portfolio", "risk"):
            _restart(stack, program)
            await wait_until_serving(config.service(program).address, within=60)
            assert await all_agree(stubs) == after_fills, program

        # Fills after the restarts are counted once, on every side.
        await market(stubs, "one-truth-4", common_pb2.SIDE_SELL, "0.1")
        final = await all_agree(stubs)
        assert final["BTC"] == Decimal("0.65")
