"""Column types every service's storage models share.

`DecimalText`: money, prices and quantities are exact, stored as the plain decimal
string of the Decimal ("0.00125", never "1.25E-3" and never a float), in a column wide
enough for any value a request can carry or arithmetic on two of them can make.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# 38 significant digits (common.validation's cap), a sign, a point, and room for the
# zeros of a product's scale (28-digit context precision, 18 places on each side).
DECIMAL_LENGTH = 80


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal stored as its exact plain-notation string (its scale kept: "1.50")."""

    impl = String(DECIMAL_LENGTH)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:  # noqa: ARG002
        return None if value is None else format(value, "f")

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:  # noqa: ARG002
        return None if value is None else Decimal(value)
