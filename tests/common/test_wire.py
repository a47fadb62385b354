from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.wire import decimal_text, timestamp, timestamp_ms


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.00125000"), "0.00125"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.0"), "0"),
        (Decimal("-12.50"), "-12.5"),
        (Decimal("0E-8"), "0"),
        (None, ""),
    ],
)
def test_decimal_text_is_plain_and_exact(value: Decimal | None, text: str) -> None:
    assert decimal_text(value) == text
    if value is not None:
        assert Decimal(text) == value


def test_timestamps_round_trip() -> None:
    moment = datetime(2024, 8, 8, 23, 54, 15, 123000, tzinfo=UTC)
    assert timestamp(moment).ToDatetime(tzinfo=UTC) == moment
    assert timestamp_ms(1723161255123) == timestamp(moment)
