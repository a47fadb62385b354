"""Limits: every bad field reported under its request name; the stored form round-trips."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from common.errors import InvalidArgument
from common.validation import Violations
from services.risk.limits import (
    Limits,
    RawLimits,
    SymbolLimits,
    from_document,
    to_document,
    to_raw,
    updated_limits,
    validate_limits,
)


def fields_of(raw: RawLimits) -> list[str]:
    violations = Violations()
    validate_limits(raw, violations)
    with pytest.raises(InvalidArgument) as raised:
        violations.raise_if_any()
    return [violation.field for violation in raised.value.violations]


def test_valid_limits_parse_into_decimals_and_empty_means_no_limit() -> None:
    violations = Violations()
    limits = validate_limits(
        RawLimits(max_leverage="2.5", max_open_orders=10, max_order_notional="", max_var="0"),
        violations,
    )
    assert not violations
    assert limits.max_leverage == Decimal("2.5")
    assert limits.max_open_orders == 10
    assert limits.max_order_notional is None
    assert limits.max_var is None  # 0 means "no limit", as in the proto


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        (RawLimits(max_leverage="-1"), ["limits.max_leverage"]),
        (RawLimits(max_leverage="two"), ["limits.max_leverage"]),
        (RawLimits(max_drawdown="1"), ["limits.max_drawdown"]),
        (RawLimits(max_price_deviation="1.5"), ["limits.max_price_deviation"]),
        (RawLimits(max_open_orders=-3), ["limits.max_open_orders"]),
        (RawLimits(allowed_symbols=("BTCUSDT",)), ["limits.allowed_symbols[0]"]),
        (RawLimits(loss_cooldown_trades=3), ["limits.loss_cooldown"]),
        (
            RawLimits(min_order_notional="100", max_order_notional="10"),
            ["limits.min_order_notional"],
        ),
        (
            RawLimits(symbol_limits={"ETH/USDT": ("-1", "")}),
            ["limits.symbol_limits['ETH/USDT'].max_position_quantity"],
        ),
        (
            RawLimits(max_leverage="NaN", daily_loss_limit="1e3", max_orders_per_second=-1),
            ["limits.max_leverage", "limits.max_orders_per_second", "limits.daily_loss_limit"],
        ),
    ],
)
def test_invalid_limits_are_rejected_with_a_field_violation(
    raw: RawLimits, fields: list[str]
) -> None:
    assert fields_of(raw) == fields


def test_per_symbol_overrides_win_over_the_defaults() -> None:
    limits = Limits(
        max_position_quantity=Decimal("1"),
        max_position_notional=Decimal("1000"),
        symbol_limits={"BTC/USDT": SymbolLimits(max_position_quantity=Decimal("0.1"))},
    )
    assert limits.position_quantity_limit("BTC/USDT") == Decimal("0.1")
    assert limits.position_notional_limit("BTC/USDT") == Decimal("1000")
    assert limits.position_quantity_limit("ETH/USDT") == Decimal("1")


def test_the_stored_document_round_trips() -> None:
    limits = Limits(
        allowed_symbols=frozenset({"BTC/USDT", "ETH/USDT"}),
        max_leverage=Decimal("2"),
        max_open_orders=5,
        symbol_limits={"BTC/USDT": SymbolLimits(max_position_notional=Decimal("5000"))},
        loss_cooldown_trades=3,
        loss_cooldown=timedelta(minutes=30),
        max_drawdown=Decimal("0.2"),
    )
    assert from_document(to_document(limits)) == limits
    assert to_raw(limits).loss_cooldown_seconds == 1800


def test_an_update_takes_only_the_named_fields() -> None:
    current = Limits(max_leverage=Decimal("1"), max_open_orders=5)
    wanted = RawLimits(max_leverage="3", max_open_orders=0)
    updated = updated_limits(current, wanted, ("max_leverage",))
    assert (updated.max_leverage, updated.max_open_orders) == (Decimal("3"), 5)


def test_an_update_naming_an_unknown_limit_is_refused() -> None:
    with pytest.raises(InvalidArgument) as raised:
        updated_limits(Limits(), RawLimits(), ("max_leverage", "max_fun"))
    assert [violation.field for violation in raised.value.violations] == ["update_mask"]


def test_a_tiny_limit_reads_back_in_plain_notation() -> None:
    raw = to_raw(Limits(max_var=Decimal("0.0000001"), max_leverage=Decimal("2.50")))
    assert (raw.max_var, raw.max_leverage) == ("0.0000001", "2.5")
