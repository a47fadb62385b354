from __future__ import annotations

from decimal import Decimal

import pytest

from common.errors import InvalidArgument
from common.validation import Violations


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.00125", Decimal("0.00125")), ("-3", Decimal(-3)), ("65000.10", Decimal("65000.10"))],
)
def test_decimal_parses_plain_notation(text: str, expected: Decimal) -> None:
    violations = Violations()
    assert violations.decimal("price", text) == expected
    assert not violations


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("NaN", "must be a decimal string"),
        ("Infinity", "must be a decimal string"),
        ("1e3", "must be a decimal string"),
        (" 1", "must be a decimal string"),
        ("1_000", "must be a decimal string"),
        ("abc", "must be a decimal string"),
        ("0.0000000000000000001", "more than 18 decimal places"),
        ("1" * 39, "38 digits"),
        ("", "is required"),
    ],
)
def test_decimal_rejects_with_a_reason(text: str, problem: str) -> None:
    violations = Violations()
    assert violations.decimal("quantity", text) is None
    with pytest.raises(InvalidArgument) as raised:
        violations.raise_if_any()
    (violation,) = raised.value.violations
    assert violation.field == "quantity"
    assert problem in violation.description


def test_sign_constraints() -> None:
    violations = Violations()
    assert violations.decimal("quantity", "0", positive=True) is None
    assert violations.decimal("fee", "-0.1", non_negative=True) is None
    assert violations.decimal("fee", "0", non_negative=True) == 0
    assert violations.decimal("price", "", required=False) is None
    with pytest.raises(InvalidArgument) as raised:
        violations.raise_if_any()
    assert [(v.field, v.description) for v in raised.value.violations] == [
        ("quantity", "must be greater than 0"),
        ("fee", "must not be negative"),
    ]


def test_every_violation_is_reported_at_once() -> None:
    violations = Violations()
    violations.decimal("quantity", "-1", positive=True)
    violations.require(False, "symbol", "unknown symbol 'FOO/BAR'")
    with pytest.raises(InvalidArgument, match="quantity: must be greater than 0; symbol: unknown"):
        violations.raise_if_any()
