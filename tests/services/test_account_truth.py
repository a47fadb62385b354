"""One truth per account, in process: the real exchange (paper venue), portfolio and risk
services on free ports and real SQLite files agree on the paper account at start, after
buys and sells with fees, and after each is stopped and started again on its database.
(tests/stack/test_one_account.py does the same with real processes under supervisord.)"""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path

from common.config import Config, load_config
from common.server import running
from common.service import ServiceSpec
from common.testing import isolated_config
from edgequant.common.v1 import common_pb2
from services.exchange.main import SPEC as EXCHANGE
from services.portfolio.main import SPEC as PORTFOLIO
from services.risk.main import SPEC as RISK
from tests.stack.account_testing import CONFIGURED, all_agree, connected, market


class Services:
    """The three services, each stoppable and startable again on its own."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._stacks: dict[str, AsyncExitStack] = {}

    async def start(self, spec: ServiceSpec) -> None:
        stack = self._stacks[spec.name] = AsyncExitStack()
        await stack.enter_async_context(running(spec, self.config))

    async def stop(self, spec: ServiceSpec) -> None:
        await self._stacks.pop(spec.name).aclose()

    async def stop_all(self) -> None:
        for name in list(self._stacks)[::-1]:
            await self._stacks.pop(name).aclose()


async def test_exchange_portfolio_and_risk_agree_in_process(tmp_path: Path) -> None:
    config = load_config(
        isolated_config(
            tmp_path,
            # In-process, the RSS each memory guard sees is the whole test runner's.
            EXCHANGE__MEMORY_BUDGET_MIB="4096",
            PORTFOLIO__MEMORY_BUDGET_MIB="4096",
            RISK__MEMORY_BUDGET_MIB="4096",
            RISK__FEEDS__RETRY_SECONDS="0.1",
            RISK__FEEDS__PORTFOLIO_REFRESH_SECONDS="0.2",
            PORTFOLIO__INGESTION__BACKOFF_INITIAL_SECONDS="0.05",
            PORTFOLIO__INGESTION__BACKOFF_MAX_SECONDS="0.2",
        )
    )
    services = Services(config)
    try:
        for spec in (RISK, EXCHANGE, PORTFOLIO):
            await services.start(spec)
        async with connected(config) as stubs:
            await all_agree(stubs, CONFIGURED)
            await market(stubs, "truth-1", common_pb2.SIDE_BUY, "0.2")
            await all_agree(stubs)
            await market(stubs, "truth-2", common_pb2.SIDE_SELL, "0.5")
            held = await all_agree(stubs)
            assert held["BTC"] == Decimal("0.7")
            for spec in (PORTFOLIO, EXCHANGE, RISK):
                await services.stop(spec)
                await services.start(spec)
                assert await all_agree(stubs) == held, spec.name
            await market(stubs, "truth-3", common_pb2.SIDE_BUY, "0.01")
            assert (await all_agree(stubs))["BTC"] == Decimal("0.71")
    finally:
        await services.stop_all()
