"""The bar engine's execution semantics, every one an explicit parameter."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from strategies.sizing import Sizing

__all__ = ["BarSettings", "Calendar", "EndOfData", "FillTiming", "Sizing"]


class FillTiming(Enum):
    # A signal computed on bar t's close fills at bar t+1's open (no look-ahead).
    NEXT_OPEN = "next_open"
    # ... or at bar t's own close (backtesting.py's trade_on_close=True).
    SAME_CLOSE = "same_close"


class EndOfData(Enum):
    # A trade still open after the last bar is closed at its close (the default) ...
    LAST_CLOSE = "last_close"
    # ... or at its open (no new entry fills on that open) ...
    LAST_OPEN = "last_open"
    # ... or left open: marked at the last close without exit costs, reported with
    # exit reason "open" and left out of the closed-trade metrics.
    LEAVE_OPEN = "leave_open"


class Calendar(Enum):
    # Trades around the clock (crypto): 365-day years.
    CONTINUOUS = "continuous"
    # Trades on exchange days (stocks, FX): years of 252 trading days.
    TRADING_DAYS = "trading_days"


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
    end_of_data: EndOfData = EndOfData.LAST_CLOSE
    # Liquidation when equity falls to this fraction of the position's notional (0:
    # when it reaches zero); see bars/engine.py. Within [0, 1).
    maintenance_margin: float = 0.0
    # Bars per year for Sharpe/Sortino; 0 derives it from `calendar` and the bar length.
    periods_per_year: float = 0.0
    # The dataset's calendar (set from the dataset, not by the client).
    calendar: Calendar = Calendar.CONTINUOUS

    def __post_init__(self) -> None:
        # A job's JSON document holds the enums by value.
        for name, kind in (
            ("fill_timing", FillTiming),
            ("sizing", Sizing),
            ("end_of_data", EndOfData),
            ("calendar", Calendar),
        ):
            value = getattr(self, name)
            if not isinstance(value, kind):
                object.__setattr__(self, name, kind(value))

    @property
    def slippage(self) -> float:
        return self.slippage_bps / 10_000.0
