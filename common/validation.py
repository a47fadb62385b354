"""Request validation that reports every bad field at once.

Money, prices and quantities arrive as decimal strings; `Violations.decimal` parses
one into a `Decimal` or records why it cannot, so a servicer can check a whole request
and raise a single INVALID_ARGUMENT naming each bad field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from common.errors import FieldViolation, InvalidArgument

# Wider than any venue's precision, narrow enough to rule out "1e-300" style input.
MAX_DECIMAL_PLACES = 18
MAX_DECIMAL_DIGITS = 38
# The valid ranges of google.protobuf.Timestamp (0001-01-01 .. 9999-12-31) and Duration
# (+-10,000 years); protobuf's own conversions raise on values outside them.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
MAX_DURATION_SECONDS = 315_576_000_000
NANOS_PER_SECOND = 1_000_000_000


class Violations:
    """Collects field violations; `raise_if_any` raises them as one InvalidArgument.

    At most MAX_REPORTED are kept, then a count of the rest: a request with a thousand
    bad list items must not cost a thousand messages in memory and in the error trailer.
    """

    MAX_REPORTED = 20

    def __init__(self) -> None:
        self._violations: list[FieldViolation] = []
        self._unreported = 0

    def __bool__(self) -> bool:
        return bool(self._violations)

    def add(self, field: str, description: str) -> None:
        if len(self._violations) < self.MAX_REPORTED:
            self._violations.append(FieldViolation(field, description))
        else:
            self._unreported += 1

    def require(self, condition: bool, field: str, description: str) -> None:
        if not condition:
            self.add(field, description)

    def decimal(
        self,
        field: str,
        text: str,
        *,
        required: bool = True,
        positive: bool = False,
        non_negative: bool = False,
    ) -> Decimal | None:
        """Parses a decimal string; None (and a violation, if required) when empty or bad."""
        if text == "":
            if required:
                self.add(field, "is required")
            return None
        value = _parse_decimal(text)
        if value is None:
            self.add(field, f"must be a decimal string such as '0.015', got {text[:40]!r}")
            return None
        _sign, digits, exponent = value.as_tuple()
        places = -exponent if isinstance(exponent, int) else 0
        if places > MAX_DECIMAL_PLACES or len(digits) > MAX_DECIMAL_DIGITS:
            self.add(field, f"has more than {MAX_DECIMAL_PLACES} decimal places or 38 digits")
            return None
        if positive and value <= 0:
            self.add(field, "must be greater than 0")
            return None
        if non_negative and value < 0:
            self.add(field, "must not be negative")
            return None
        return value

    def timestamp(self, field: str, stamp: Timestamp) -> datetime | None:
        """An aware UTC datetime; None (and a violation) outside Timestamp's valid range."""
        if not (
            MIN_TIMESTAMP_SECONDS <= stamp.seconds <= MAX_TIMESTAMP_SECONDS
            and 0 <= stamp.nanos < NANOS_PER_SECOND
        ):
            self.add(field, "must be a valid timestamp between 0001-01-01 and 9999-12-31")
            return None
        return stamp.ToDatetime(tzinfo=UTC)

    def duration(self, field: str, duration: Duration) -> timedelta | None:
        """A timedelta; None (and a violation) outside Duration's valid range."""
        seconds, nanos = duration.seconds, duration.nanos
        opposite_signs = (seconds < 0 < nanos) or (nanos < 0 < seconds)
        if abs(seconds) > MAX_DURATION_SECONDS or abs(nanos) >= NANOS_PER_SECOND or opposite_signs:
            self.add(field, "must be a valid duration of at most 10,000 years")
            return None
        return duration.ToTimedelta()

    def raise_if_any(self) -> None:
        if not self._violations:
            return
        reported = list(self._violations)
        if self._unreported:
            more = f"and {self._unreported} more violations, not listed"
            reported.append(FieldViolation(reported[-1].field, more))
        raise InvalidArgument(reported)


def _parse_decimal(text: str) -> Decimal | None:
    """A finite Decimal from plain notation ("12.5", "-0.001"); None for anything else."""
    if text != text.strip() or "e" in text.lower() or "_" in text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
