"""Position sizing at an entry: the one rule the bar engine and the live runner share."""

from __future__ import annotations

import math
from enum import Enum


class Sizing(Enum):
    # `size` of current equity (0 < size <= 1), fractional units.
    FRACTION_OF_EQUITY = "fraction_of_equity"
    # `size` units per trade, whatever the equity.
    FIXED_QUANTITY = "fixed_quantity"
    # As many whole units as `size` of equity buys, fees included (backtesting.py's default).
    ALL_IN_WHOLE_UNITS = "all_in_whole_units"


def entry_units(
    sizing: Sizing, size: float, cash: float, price: float, *, fee_rate: float, fee_fixed: float
) -> float:
    """Units an entry at `price` takes with `cash` before it (0 or less: no trade).

    Fraction of equity commits `size` of the cash, fees included:
    (size * cash - fee_fixed) / (price * (1 + fee_rate)); whole units round that down.
    """
    if sizing is Sizing.FIXED_QUANTITY:
        return size
    units = (size * cash - fee_fixed) / (price + fee_rate * price)
    if sizing is Sizing.ALL_IN_WHOLE_UNITS:
        return float(math.floor(units))
    return units
