"""Request validation that reports every bad field at once.

Money, prices and quantities arrive as decimal strings; `Violations.decimal` parses
one into a `Decimal` or records why it cannot, so a servicer can check a whole request
and raise a single INVALID_ARGUMENT naming each bad field.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from common.errors import FieldViolation, InvalidArgument

# Wider than any venue's precision, narrow enough to rule out "1e-300" style input.
MAX_DECIMAL_PLACES = 18
MAX_DECIMAL_DIGITS = 38


class Violations:
    """Collects field violations; `raise_if_any` raises them as one InvalidArgument."""

    def __init__(self) -> None:
        self._violations: list[FieldViolation] = []

    def __bool__(self) -> bool:
        return bool(self._violations)

    def add(self, field: str, description: str) -> None:
        self._violations.append(FieldViolation(field, description))

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

    def raise_if_any(self) -> None:
        if self._violations:
            raise InvalidArgument(self._violations)


def _parse_decimal(text: str) -> Decimal | None:
    """A finite Decimal from plain notation ("12.5", "-0.001"); None for anything else."""
    if text != text.strip() or "e" in text.lower() or "_" in text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
