"""The bar engine's execution semantics, every one an explicit parameter."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FillTiming(Enum):
    # A signal computed on bar t's close fills at bar t+1's open (no look-ahead).
    NEXT_OPEN = "next_open"
    # ... or at bar t's own close (backtesting.py's trade_on_close=True).
    SAME_CLOSE = "same_close"


class Sizing(Enum):
    # `size` of current equity (0 < size <= 1), fractional units.
    FRACTION_OF_EQUITY = "fraction_of_equity"
    # `size` units per trade, whatever the equity.
    FIXED_QUANTITY = "fixed_quantity"
    # As many whole units as `size` of equity buys, fees included (backtesting.py's default).
    ALL_IN_WHOLE_UNITS = "all_in_whole_units"


@dataclass(frozen=True)
class BarSettings:
    initial_cash: float = 10_000.0
    # Each fill pays fee_rate * |quantity| * price + fee_fixed.
    fee_rate: float = 0.0
    fee_fixed: float = 0.0
    # Every fill is worse by this many basis points: buys higher, sells lower.
    slippage_bps: float = 0.0
    fill_timing: FillTiming = FillTiming.NEXT_OPEN
    sizing: Sizing = Sizing.FRACTION_OF_EQUITY
    size: float = 1.0
    allow_short: bool = False
    # Fractions of the entry fill price; 0 is off. Checked against each bar's low/high.
    stop_loss: float = 0.0
    take_profit: float = 0.0

    @property
    def slippage(self) -> float:
        return self.slippage_bps / 10_000.0
