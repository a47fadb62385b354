"""The engine: a breach halts trading once (the operator stays in charge after), state
and limits are stored before they are served, approvals reserve exposure, denials and
changes are published."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read better short
from pathlib import Path

import pytest

from common import migrate
from common.database import create_engine, session_factory
from common.fanout import Fanout
from services.risk.engine import AccountRisk, RiskEngine
from services.risk.events import RiskEvent, RiskEventType, risk_events
from services.risk.limits import Limits
from services.risk.risk_book import SOURCES, Market, OpenOrder, OrderSide, Position, RiskBook
from services.risk.rules import OrderIntent
from services.risk.storage.repository import RiskRepository
from services.risk.trading_state import TradingState, initial_state

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()
BTC = "BTC/USDT"
PAPER = "paper"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database per module; each test works on a copy."""
    path = tmp_path_factory.mktemp("risk") / "risk.db"
    migrate.upgrade("risk", f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def repository(
    request: pytest.FixtureRequest, migrated: Path, tmp_path: Path
) -> AsyncIterator[RiskRepository]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        # Alembic's environment runs its own event loop: not on this one.
        await asyncio.to_thread(migrate.upgrade, "risk", url)
    else:
        path = tmp_path / "risk.db"
        shutil.copyfile(migrated, path)
        url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    yield RiskRepository(session_factory(engine))
    await engine.dispose()


def make_engine(repository: RiskRepository, limits: Limits) -> RiskEngine:
    book = RiskBook(
        markets={BTC: Market(BTC, "BTC", "USDT")},
        marks={BTC: D("50000")},
        positions={BTC: Position(quantity=D("1"), cost_basis=D("50000"))},
        cash=D("50000"),
        synced=set(SOURCES),
    )
    engine = RiskEngine(
        limits=limits,
        trading_state=initial_state(datetime.fromtimestamp(NOW, UTC)),
        repository=repository,
        events=risk_events(),
        clock=lambda: NOW,
    )
    engine.add_account(PAPER, "paper", book)
    engine.accounts_listed = True
    return engine


def paper(engine: RiskEngine) -> AccountRisk:
    return engine.accounts[PAPER]


def state_of(engine: RiskEngine) -> TradingState:
    return paper(engine).trading_state.state


class RecordingHub(Fanout[RiskEvent]):
    def __init__(self) -> None:
        super().__init__("risk event", "")
        self.published: list[RiskEvent] = []

    def publish(self, event: RiskEvent) -> None:
        self.published.append(event)


def record_events(engine: RiskEngine) -> list[RiskEvent]:
    hub = RecordingHub()
    engine.events = hub
    return hub.published


async def test_a_drawdown_breach_halts_once_and_the_operator_can_resume(
    repository: RiskRepository,
) -> None:
    engine = make_engine(repository, Limits(max_drawdown=D("0.1")))
    published = record_events(engine)
    await engine.after_equity_change(paper(engine))  # peak: 100,000
    paper(engine).book.marks[BTC] = D("40000")  # equity 90,000: a 10% drawdown
    await engine.after_equity_change(paper(engine))
    assert state_of(engine) is TradingState.HALTED
    assert paper(engine).trading_state.updated_by == "risk"
    assert engine.trading_state.state is TradingState.ACTIVE  # the global switch stays
    assert [event.type for event in published] == [
        RiskEventType.LIMIT_BREACHED,
        RiskEventType.TRADING_STATE_CHANGED,
    ]
    stored = await repository.latest_trading_state(PAPER)
    assert stored is not None
    assert stored.state is TradingState.HALTED

    await engine.set_trading_state(TradingState.REDUCING, "closing out", "alice", PAPER)
    paper(engine).book.marks[BTC] = D("39000")  # still in breach: no second halt
    await engine.after_equity_change(paper(engine))
    assert state_of(engine) is TradingState.REDUCING
    history = await repository.trading_state_history()
    assert [(c.state, c.updated_by) for c in history] == [
        (TradingState.REDUCING, "alice"),
        (TradingState.HALTED, "risk"),
    ]


async def test_a_restriction_is_logged_as_a_warning_a_return_to_active_is_not(
    repository: RiskRepository, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(repository, Limits())
    caplog.set_level(logging.INFO, logger="edgequant.risk")
    for state in (TradingState.HALTED, TradingState.REDUCING, TradingState.ACTIVE):
        await engine.set_trading_state(state, "operator", "alice")

    changes = [r for r in caplog.records if r.getMessage().startswith("trading state ")]
    assert [(r.getMessage(), r.levelno) for r in changes] == [
        ("trading state HALTED (global)", logging.WARNING),
        ("trading state REDUCING (global)", logging.WARNING),
        ("trading state ACTIVE (global)", logging.INFO),
    ]


async def test_limits_are_stored_before_they_apply(repository: RiskRepository) -> None:
    engine = make_engine(repository, Limits())
    await engine.update_limits(Limits(max_open_orders=3), "bob")
    assert engine.limits.max_open_orders == 3
    assert await repository.load_limits() == Limits(max_open_orders=3)


async def test_an_approved_order_reserves_its_exposure_until_the_exchange_reports_it(
    repository: RiskRepository,
) -> None:
    engine = make_engine(repository, Limits(max_open_orders=1))
    order = OrderIntent(BTC, OrderSide.BUY, D("0.1"), D("50000"), order_id="o-1")
    assert engine.check(order, PAPER) == []
    assert list(paper(engine).book.open_orders) == ["o-1"]
    second = OrderIntent(BTC, OrderSide.BUY, D("0.1"), D("50000"), order_id="o-2")
    assert [v.reason for v in engine.check(second, PAPER)] == ["RISK_MAX_OPEN_ORDERS"]


async def test_a_denial_is_published_with_the_order_ids(repository: RiskRepository) -> None:
    engine = make_engine(repository, Limits(max_order_notional=D("1000")))
    published = record_events(engine)
    order = OrderIntent(
        BTC, OrderSide.BUY, D("0.1"), D("50000"), order_id="o-9", client_order_id="c-9"
    )
    engine.check(order, PAPER)
    assert [(e.type, e.order_id, e.client_order_id) for e in published] == [
        (RiskEventType.ORDER_DENIED, "o-9", "c-9")
    ]
    assert [v.reason for v in published[0].violations] == ["RISK_MAX_NOTIONAL"]


async def test_a_check_after_its_order_finished_reserves_nothing(
    repository: RiskRepository,
) -> None:
    """The exchange gave up waiting (its deadline passed) and rejected the order; the
    check arrives after that report: approving it must not leave an open order behind
    that no later report would ever remove."""
    engine = make_engine(repository, Limits())
    order = OrderIntent(BTC, OrderSide.BUY, D("0.1"), D("50000"), order_id="o-late")
    engine.apply_order(PAPER, "o-late", None)
    assert engine.check(order, PAPER) == []
    assert paper(engine).book.open_orders == {}


async def test_a_late_report_of_a_denied_order_does_not_open_it(
    repository: RiskRepository,
) -> None:
    """The exchange's PENDING_NEW report of an order may arrive after risk denied it."""
    engine = make_engine(repository, Limits(max_order_notional=D("1000")))
    order = OrderIntent(BTC, OrderSide.BUY, D("0.1"), D("50000"), order_id="o-denied")
    assert [v.reason for v in engine.check(order, PAPER)] == ["RISK_MAX_NOTIONAL"]
    engine.apply_order(
        PAPER, "o-denied", OpenOrder("o-denied", BTC, OrderSide.BUY, D("0.1"), D("50000"))
    )
    assert paper(engine).book.open_orders == {}
