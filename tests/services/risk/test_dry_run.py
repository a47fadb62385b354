"""CheckOrder with dry_run: the verdict a real check would give, and nothing changes: no
rate window, no reservation, no event, no record under the order id."""

from __future__ import annotations

from decimal import Decimal as D  # noqa: N817 - amounts read better short
from pathlib import Path

from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.risk.limits import Limits
from services.risk.risk_book import OpenOrder, OrderSide
from services.risk.rules import OrderIntent
from services.risk.storage.repository import RiskRepository
from tests.services.risk.test_engine import (  # noqa: F401 - fixtures
    BTC,
    PAPER,
    make_engine,
    migrated,
    paper,
    record_events,
    repository,
)
from tests.services.risk.test_order_checks import denials, eth_open_notional, subscribed_events
from tests.services.risk.test_servicer import buy, eventually, reasons, risk_stack


def dry(request: risk_pb2.CheckOrderRequest) -> risk_pb2.CheckOrderRequest:
    preview = risk_pb2.CheckOrderRequest()
    preview.CopyFrom(request)
    preview.dry_run = True
    return preview


async def synced_by_dry_runs(risk: risk_pb2_grpc.RiskServiceAsyncStub) -> None:
    """Waits for the feeds' first sync with dry runs, so no submission is counted."""

    async def fresh() -> bool:
        return "RISK_STATE_STALE" not in reasons(await risk.CheckOrder(dry(buy())))

    await eventually(fresh)


async def test_a_dry_run_answers_the_verdict_and_changes_nothing(tmp_path: Path) -> None:
    async with risk_stack(tmp_path, RISK__LIMITS__MAX_ORDERS_PER_MINUTE="1") as stack:
        risk = stack.risk
        await synced_by_dry_runs(risk)
        events = await subscribed_events(risk)
        resting = await eth_open_notional(risk)

        order = buy(quantity="1", price="0.1")
        order.order_id = "d-1"
        # Dry runs of the same id with other parameters leave no record to collide with.
        bigger = buy(quantity="2", price="0.1")
        bigger.order_id = "d-1"
        assert (await risk.CheckOrder(dry(bigger))).decision == risk_pb2.DECISION_APPROVE
        previews = [await risk.CheckOrder(dry(order)) for _ in range(3)]
        assert all(p.decision == risk_pb2.DECISION_APPROVE for p in previews)
        assert await eth_open_notional(risk) == resting  # nothing reserved

        # A denied dry run answers its violations, and publishes no event.
        unknown = buy(symbol="NOPE/USDT")
        unknown.order_id = "d-unknown"
        denied_preview = await risk.CheckOrder(dry(unknown))
        assert denied_preview.decision == risk_pb2.DECISION_DENY
        assert reasons(denied_preview) == ["RISK_SYMBOL_NOT_ALLOWED"]

        # The real order after four dry runs is still the first of the one a minute.
        real = await risk.CheckOrder(order)
        assert real == previews[0]
        assert await eth_open_notional(risk) == resting + D("0.1")  # reserved by the real one

        # Now the window is full: a dry run says so, as the real check does.
        second = buy(quantity="1", price="0.1")
        second.order_id = "d-2"
        assert reasons(await risk.CheckOrder(dry(second))) == ["RISK_ORDER_RATE"]
        assert reasons(await risk.CheckOrder(second)) == ["RISK_ORDER_RATE"]
        # The first denial event is the real check's: the dry denials published none.
        assert await denials(events, 1) == ["d-2"]
        events.cancel()
        assert await eth_open_notional(risk) == resting + D("0.1")


async def test_a_dry_run_of_an_order_reported_open_is_not_counted_against_itself(
    repository: RiskRepository,  # noqa: F811 - the fixture imported above
) -> None:
    """The exchange may report an order before it is checked (as for `check`): a dry run
    of it is not denied by its own reservation, and leaves it open as it found it."""
    engine = make_engine(repository, Limits(max_open_orders=1))
    published = record_events(engine)
    resting = OpenOrder("o-1", BTC, OrderSide.BUY, D("0.1"), D("50000"))
    engine.apply_order(PAPER, "o-1", resting)
    order = OrderIntent(BTC, OrderSide.BUY, D("0.1"), D("50000"), order_id="o-1")
    assert engine.preview(order, PAPER) == []
    assert paper(engine).book.open_orders == {"o-1": resting}
    another = OrderIntent(BTC, OrderSide.BUY, D("0.1"), D("50000"), order_id="o-2")
    assert [v.reason for v in engine.preview(another, PAPER)] == ["RISK_MAX_OPEN_ORDERS"]
    assert published == []
    # The real check of o-1 is evaluated afresh, not answered from the dry runs.
    assert engine.check(order, PAPER) == []
