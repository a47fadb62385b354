"""The five services, in start order (risk before exchange before portfolio)."""

from __future__ import annotations

from common.service import ServiceSpec
from services.backtest.main import SPEC as BACKTEST
from services.exchange.main import SPEC as EXCHANGE
from services.portfolio.main import SPEC as PORTFOLIO
from services.risk.main import SPEC as RISK
from services.strategy.main import SPEC as STRATEGY

SPECS: tuple[ServiceSpec, ...] = (RISK, EXCHANGE, PORTFOLIO, BACKTEST, STRATEGY)
