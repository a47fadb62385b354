from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

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


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(253_402_300_800, 0), (-62_135_596_801, 0), (2**62, 0), (0, -1), (0, 1_000_000_000)],
)
def test_a_timestamp_outside_its_valid_range_is_a_violation(seconds: int, nanos: int) -> None:
    violations = Violations()
    assert violations.timestamp("start_time", Timestamp(seconds=seconds, nanos=nanos)) is None
    with pytest.raises(InvalidArgument) as raised:
        violations.raise_if_any()
    assert raised.value.violations[0].field == "start_time"


def test_the_edges_of_the_timestamp_range_are_valid() -> None:
    violations = Violations()
    last = violations.timestamp("t", Timestamp(seconds=253_402_300_799, nanos=999_999_999))
    first = violations.timestamp("t", Timestamp(seconds=-62_135_596_800))
    assert last == datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert first == datetime(1, 1, 1, tzinfo=UTC)
    assert not violations


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(315_576_000_001, 0), (-(2**62), 0), (1, -1), (-1, 1), (0, 1_000_000_000)],
)
def test_a_duration_outside_its_valid_range_is_a_violation(seconds: int, nanos: int) -> None:
    violations = Violations()
    assert violations.duration("horizon", Duration(seconds=seconds, nanos=nanos)) is None
    assert violations


def test_a_valid_duration_converts() -> None:
    violations = Violations()
    assert violations.duration("horizon", Duration(seconds=-90, nanos=-5000)) == timedelta(
        seconds=-90, microseconds=-5
    )
    assert not violations


def test_only_the_first_violations_are_listed_then_a_count() -> None:
    violations = Violations()
    for index in range(1000):
        violations.add(f"symbols[{index}]", "is not a unified symbol")
    with pytest.raises(InvalidArgument) as raised:
        violations.raise_if_any()
    listed = raised.value.violations
    assert len(listed) == Violations.MAX_REPORTED + 1
    assert listed[-1].description == "and 980 more violations, not listed"
