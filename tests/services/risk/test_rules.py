"""Each pre-trade rule denies at its limit and approves just under it; every failure is
reported; HALTED, REDUCING and a stale book behave as the operator relies on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D  # noqa: N817 - amounts read better short

import pytest

from services.risk.limits import Limits, SymbolLimits
from services.risk.risk_book import SOURCES, Market, OpenOrder, OrderSide, Position, RiskBook
from services.risk.rules import OrderIntent, check_order
from services.risk.trading_state import TradingState

NOW = 1_800_000_000.0
UTC_NOW = datetime.fromtimestamp(NOW, UTC)
BTC = "BTC/USDT"


def make_book() -> RiskBook:
    """10,000 USDT cash, 0.1 BTC held, BTC marked at 50,000: equity 15,000."""
    book = RiskBook(
        markets={
            BTC: Market(
                BTC,
                "BTC",
                "USDT",
                price_increment=D("0.01"),
                quantity_increment=D("0.00001"),
                min_quantity=D("0.001"),
                max_quantity=D("100"),
                min_notional=D("5"),
            )
        },
        marks={BTC: D("50000")},
        positions={BTC: Position(quantity=D("0.1"), cost_basis=D("4000"))},
        cash=D("10000"),
        synced=set(SOURCES),
    )
    book.mark_equity(UTC_NOW)
    return book


def buy(quantity: str = "0.01", price: str | None = "50000", **kwargs: object) -> OrderIntent:
    price_ = None if price is None else D(price)
    return OrderIntent(BTC, OrderSide.BUY, D(quantity), price_, **kwargs)  # type: ignore[arg-type]


def sell(quantity: str = "0.01", price: str | None = "50000", **kwargs: object) -> OrderIntent:
    price_ = None if price is None else D(price)
    return OrderIntent(BTC, OrderSide.SELL, D(quantity), price_, **kwargs)  # type: ignore[arg-type]


def reasons(
    order: OrderIntent,
    limits: Limits,
    book: RiskBook | None = None,
    state: TradingState = TradingState.ACTIVE,
) -> list[str]:
    violations = check_order(order, book or make_book(), limits, state=state, now=NOW)
    return [violation.reason for violation in violations]


def test_an_order_within_every_limit_is_approved() -> None:
    assert reasons(buy(), Limits()) == []


# (limits, order at the limit, order just under it, reason): "at the limit" is the
# smallest step that reaches it; the step below must pass.
CASES = [
    (Limits(max_order_notional=D("500")), buy("0.01"), buy("0.00999"), "RISK_MAX_NOTIONAL"),
    (Limits(min_order_notional=D("500")), buy("0.00999"), buy("0.01"), "RISK_MIN_NOTIONAL"),
    (  # 0.1 held + 0.02 bought = 0.12
        Limits(max_position_quantity=D("0.12")),
        buy("0.02"),
        buy("0.01999"),
        "RISK_MAX_POSITION",
    ),
    (  # (0.1 + 0.02) * 50,000 = 6,000
        Limits(max_position_notional=D("6000")),
        buy("0.02"),
        buy("0.01999"),
        "RISK_MAX_POSITION",
    ),
    (  # a per-symbol override wins over the default
        Limits(
            max_position_quantity=D("100"),
            symbol_limits={BTC: SymbolLimits(max_position_quantity=D("0.12"))},
        ),
        buy("0.02"),
        buy("0.01999"),
        "RISK_MAX_POSITION",
    ),
    (  # gross 5,000 held + 1,000 ordered
        Limits(max_gross_exposure=D("6000")),
        buy("0.02"),
        buy("0.01999"),
        "RISK_MAX_GROSS_EXPOSURE",
    ),
    (  # 6,000 over equity 15,000 = 0.4
        Limits(max_leverage=D("0.4")),
        buy("0.02"),
        buy("0.01999"),
        "RISK_MAX_LEVERAGE",
    ),
    (  # 5% from the mark of 50,000 is 52,500
        Limits(max_price_deviation=D("0.05")),
        buy(price="52500"),
        buy(price="52499.99"),
        "RISK_PRICE_BAND",
    ),
    (  # spot: 10,000 cash buys at most 0.2 BTC at 50,000
        Limits(),
        buy("0.20001"),
        buy("0.2"),
        "RISK_INSUFFICIENT_BALANCE",
    ),
    (Limits(), sell("0.10001"), sell("0.1"), "RISK_INSUFFICIENT_BALANCE"),
    (Limits(), buy("0.010001"), buy("0.01"), "RISK_PRECISION"),
    (Limits(), buy(price="50000.001"), buy(price="50000.01"), "RISK_PRECISION"),
    (Limits(allowed_symbols=frozenset({"ETH/USDT"})), buy(), None, "RISK_SYMBOL_NOT_ALLOWED"),
    (Limits(), buy("0.00099"), buy("0.001"), "RISK_MIN_QUANTITY"),
    (Limits(), buy("0.001", price="4999.99"), buy("0.001", price="5000"), "RISK_MIN_NOTIONAL"),
    (Limits(), buy(reduce_only=True), sell(reduce_only=True), "RISK_REDUCE_ONLY"),
]


@pytest.mark.parametrize(("limits", "at_limit", "under_limit", "reason"), CASES)
def test_each_rule_denies_at_its_limit_and_approves_under_it(
    limits: Limits, at_limit: OrderIntent, under_limit: OrderIntent | None, reason: str
) -> None:
    assert reasons(at_limit, limits) == [reason]
    if under_limit is not None:
        assert reasons(under_limit, limits) == []


def test_amounts_must_be_positive() -> None:
    assert "RISK_INVALID_QUANTITY" in reasons(buy("0"), Limits())
    assert "RISK_INVALID_PRICE" in reasons(buy(price="0"), Limits())
    assert "RISK_INVALID_PRICE" in reasons(buy(price="-1"), Limits())


def test_an_unknown_symbol_is_denied() -> None:
    order = OrderIntent("DOGE/USDT", OrderSide.BUY, D("1"), D("0.1"))
    assert "RISK_SYMBOL_NOT_ALLOWED" in reasons(order, Limits())


def test_open_orders_count_towards_the_open_order_limit_position_and_balance() -> None:
    book = make_book()
    book.open_orders["o1"] = OpenOrder("o1", BTC, OrderSide.BUY, D("0.01"), D("49000"))
    book.open_orders["o2"] = OpenOrder("o2", BTC, OrderSide.BUY, D("0.01"), D("49000"))
    assert reasons(buy(), Limits(max_open_orders=2), book) == ["RISK_MAX_OPEN_ORDERS"]
    assert reasons(buy(), Limits(max_open_orders=3), book) == []
    # 0.1 held + 0.02 resting + 0.01 new = 0.13
    assert reasons(buy(), Limits(max_position_quantity=D("0.13")), book) == ["RISK_MAX_POSITION"]
    assert reasons(buy(), Limits(max_position_quantity=D("0.13001")), book) == []
    # cash 10,000 - 980 held by the open buys leaves 9,020 = 0.1804 BTC at 50,000
    assert reasons(buy("0.18041"), Limits(), book) == ["RISK_INSUFFICIENT_BALANCE"]
    assert reasons(buy("0.1804"), Limits(), book) == []


def test_order_rate_per_second_and_per_minute() -> None:
    book = make_book()
    for moment in (NOW - 30, NOW - 0.5):
        book.record_submission(moment)
    assert reasons(buy(), Limits(max_orders_per_second=1), book) == ["RISK_ORDER_RATE"]
    assert reasons(buy(), Limits(max_orders_per_second=2), book) == []
    assert reasons(buy(), Limits(max_orders_per_minute=2), book) == ["RISK_ORDER_RATE"]
    assert reasons(buy(), Limits(max_orders_per_minute=3), book) == []


def test_daily_loss_and_drawdown_deny_new_exposure_but_let_positions_shrink() -> None:
    book = make_book()  # day starts at equity 15,000, the peak
    book.marks[BTC] = D("40000")  # equity 14,000: down 1,000 today, 6.67% from the peak
    loss_limits = Limits(daily_loss_limit=D("1000"))
    assert reasons(buy(price="40000"), loss_limits, book) == ["RISK_DAILY_LOSS"]
    assert reasons(buy(price="40000"), Limits(daily_loss_limit=D("1000.01")), book) == []
    assert reasons(sell(price="40000"), loss_limits, book) == []
    drawdown = D(1000) / D(15000)
    assert reasons(buy(price="40000"), Limits(max_drawdown=drawdown), book) == ["RISK_MAX_DRAWDOWN"]
    assert reasons(buy(price="40000"), Limits(max_drawdown=D("0.0667")), book) == []


def test_loss_cooldown_after_a_losing_streak() -> None:
    book = make_book()
    book.losing_streak = 3
    book.last_loss_time = UTC_NOW - timedelta(minutes=59)
    limits = Limits(loss_cooldown_trades=3, loss_cooldown=timedelta(hours=1))
    assert reasons(buy(), limits, book) == ["RISK_LOSS_COOLDOWN"]
    assert reasons(buy(), replace(limits, loss_cooldown_trades=4), book) == []
    book.last_loss_time = UTC_NOW - timedelta(hours=1)
    assert reasons(buy(), limits, book) == []


def test_a_market_order_is_valued_at_the_mark() -> None:
    assert reasons(buy("0.01", price=None), Limits(max_order_notional=D("500"))) == [
        "RISK_MAX_NOTIONAL"
    ]
    book = make_book()
    del book.marks[BTC]
    # a held position without a mark leaves equity unknown: the whole book is stale
    assert reasons(buy("0.01", price=None), Limits(), book) == ["RISK_STATE_STALE"]
    del book.positions[BTC]
    assert reasons(buy("0.01", price=None), Limits(), book) == ["RISK_NO_MARK_PRICE"]


def test_several_failed_rules_are_all_reported() -> None:
    limits = Limits(
        allowed_symbols=frozenset({"ETH/USDT"}),
        max_order_notional=D("100"),
        max_position_quantity=D("0.1"),
        max_price_deviation=D("0.01"),
    )
    order = buy("0.010001", price="60000")
    assert reasons(order, limits, state=TradingState.HALTED) == [
        "RISK_TRADING_HALTED",
        "RISK_SYMBOL_NOT_ALLOWED",
        "RISK_PRECISION",
        "RISK_MAX_NOTIONAL",
        "RISK_MAX_POSITION",
        "RISK_PRICE_BAND",
    ]


def test_halted_denies_every_order_even_a_reducing_one() -> None:
    assert reasons(sell(), Limits(), state=TradingState.HALTED) == ["RISK_TRADING_HALTED"]
    assert reasons(buy(), Limits(), state=TradingState.HALTED) == ["RISK_TRADING_HALTED"]


def test_reducing_passes_only_orders_that_shrink_the_position() -> None:
    assert reasons(sell("0.05"), Limits(), state=TradingState.REDUCING) == []
    assert reasons(buy(), Limits(), state=TradingState.REDUCING) == ["RISK_REDUCING_ONLY"]
    # selling past flat would open a short: it increases the absolute position
    flip = sell("0.25")
    assert "RISK_REDUCING_ONLY" in reasons(flip, Limits(), state=TradingState.REDUCING)


def test_a_stale_book_denies_with_state_stale_only() -> None:
    book = make_book()
    book.synced.discard("orders")
    violations = check_order(buy(), book, Limits(), state=TradingState.ACTIVE, now=NOW)
    assert [v.reason for v in violations] == ["RISK_STATE_STALE"]
    assert "orders" in violations[0].message
