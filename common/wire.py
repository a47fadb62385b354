"""Domain values in their wire form: decimal strings and protobuf timestamps.

Every service answers money, prices and quantities as plain decimal strings
("0.00125", "100", "0"; never "1E+2" or "-0"), and times as Timestamps.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp


def decimal_text(value: Decimal | None) -> str:
    """Plain notation without trailing zeros; "" for None (a field not set)."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def timestamp_ms(milliseconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp
