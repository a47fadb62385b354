"""The vectorized bar engine.

Semantics (all parameters of `BarSettings`):

- A strategy returns, per bar, the position wanted after that bar's close (+1, -1, 0, or
  NaN for "no change"). Without shorting, -1 means flat. The engine trades only where the
  wanted position changes; after a stop it stays flat until the next change.
- A change seen on bar t's close fills at bar t+1's open (default) or at bar t's close.
  A reversal closes the open trade and opens the new one at the same price.
- Every fill pays `fee_rate * |quantity| * price + fee_fixed` and is `slippage_bps`
  worse than the reference price (buys higher, sells lower).
- Sizing at each entry: a fraction of equity (fractional units), a fixed quantity, or
  as many whole units as that fraction of equity buys, fees included.
- Stop-loss / take-profit are fractions of the entry fill price, checked against each
  bar's low / high from the entry bar on (same-close fills: from the next bar). A gap
  through the level fills at the open. If both are touched in one bar, the stop-loss
  wins (the pessimistic reading, as backtesting.py and vectorbt do).
- End of data (`end_of_data`): a trade still open after the last bar is closed at the
  last close (default), or at the last open (then no new entry fills on that open), or
  left open: marked to market at the last close with no exit fee or slippage, reported
  with exit reason "open" and left out of the closed-trade metrics.
- Liquidation (`maintenance_margin` m, default 0): while a position is held, equity
  marked at the bar's adverse extreme (low for a long, high for a short) is checked
  against m * quantity * price, on the same bars a stop-loss is checked; the exit fill
  of a trade is checked too. Where equity would be at or below it, the position is
  closed at the price where equity meets it (the liquidation price, solved from the
  cash and quantity), or at the bar's open if the bar opened beyond it (a gap), with
  the usual fee and slippage; it beats a take-profit on the same bar, and a stop-loss
  only if its level comes first. Trading then stops: the run ends at that bar, the
  equity curve and the metrics cover it up to there. Equity floors at exactly 0: a
  loss beyond it (a gap through zero) is reported as `uncovered_loss`. Unleveraged
  longs cannot be liquidated (their liquidation price is 0); shorts and fixed
  quantities larger than equity can.
- Equity is marked at every bar's close.

The hot path is numpy over bars. What depends on the path runs once per trade, not per
bar: stop searches (one numpy scan over the trade's bars) and, for whole-unit sizing
only, the cash recursion (floor() breaks its closed form). Fraction-of-equity and fixed
sizing are solved in closed form over all trades at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.backtest.bars.settings import BarSettings, EndOfData, FillTiming, Sizing
from strategies.candles import BoolArray, Candles, FloatArray, IntArray
from strategies.sizing import entry_units

EXIT_SIGNAL, EXIT_STOP_LOSS, EXIT_TAKE_PROFIT, EXIT_END, EXIT_LIQUIDATION, EXIT_OPEN = range(6)
# A liquidation level this small relative to the entry price is rounding, not leverage.
_NEGLIGIBLE_PRICE = 1e-9
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "end_of_data", "liquidation", "open")


@dataclass(frozen=True)
class Trades:
    """Closed trades as columns, in order of entry. Quantities are unsigned."""

    direction: IntArray
    entry_bar: IntArray
    exit_bar: IntArray
    quantity: FloatArray
    entry_price: FloatArray
    exit_price: FloatArray
    fees: FloatArray
    pnl: FloatArray
    exit_reason: IntArray

    def __len__(self) -> int:
        return len(self.pnl)

    @property
    def return_fraction(self) -> FloatArray:
        """PnL after fees over the entry notional."""
        notional = self.quantity * self.entry_price
        return np.divide(self.pnl, notional, out=np.zeros_like(self.pnl), where=notional > 0)

    @property
    def closed(self) -> BoolArray:
        """The trades that were closed (all but one left open at the end)."""
        closed: BoolArray = np.not_equal(self.exit_reason, EXIT_OPEN)
        return closed


@dataclass(frozen=True)
class Liquidation:
    bar: int
    # The loss beyond equity (equity floors at 0), in quote currency; 0 if none.
    uncovered_loss: float


@dataclass(frozen=True)
class BarResult:
    # At every bar's close, up to the liquidation bar if the run was liquidated.
    equity: FloatArray
    # Signed quantity held at each bar's close.
    position: FloatArray
    trades: Trades
    liquidation: Liquidation | None = None


@dataclass(frozen=True)
class _Legs:
    """Trades before sizing: where and at which price each one enters and leaves."""

    direction: IntArray
    entry_bar: IntArray
    exit_bar: IntArray
    entry_price: FloatArray
    exit_price: FloatArray
    exit_reason: IntArray


def simulate(candles: Candles, target: FloatArray, settings: BarSettings) -> BarResult:
    legs = _legs(candles, target, settings)
    if settings.stop_loss > 0 or settings.take_profit > 0:
        legs = _apply_stops(candles, legs, settings)
    quantity, cash_in, cash_out = _size(legs, settings)
    traded = quantity > 0
    legs = _select(legs, traded)
    quantity, cash_in, cash_out = quantity[traded], cash_in[traded], cash_out[traded]
    liquidation = None
    found = _liquidation(candles, legs, quantity, cash_in, settings)
    if found is not None:
        legs, quantity, cash_in, cash_out, liquidation = found
    still_open = legs.exit_reason == EXIT_OPEN
    exit_fees = np.where(still_open, 0.0, _fee(quantity, legs.exit_price, settings))
    fees = _fee(quantity, legs.entry_price, settings) + exit_fees
    pnl = legs.direction * quantity * (legs.exit_price - legs.entry_price) - fees
    trades = Trades(
        direction=legs.direction,
        entry_bar=legs.entry_bar,
        exit_bar=legs.exit_bar,
        quantity=quantity,
        entry_price=legs.entry_price,
        exit_price=legs.exit_price,
        fees=fees,
        pnl=pnl,
        exit_reason=legs.exit_reason,
    )
    equity, position = _mark(candles, trades, cash_in, cash_out, settings.initial_cash)
    if liquidation is not None:
        equity, position = equity[: liquidation.bar + 1], position[: liquidation.bar + 1]
    return BarResult(equity=equity, position=position, trades=trades, liquidation=liquidation)


def position_changes(target: FloatArray, allow_short: bool) -> tuple[IntArray, IntArray]:
    """The bars where the wanted position changes, and the position wanted from there.

    The wanted position is the sign of the last non-NaN target (flat before the first);
    without shorting a -1 reads as flat. Only the defined entries are touched, so a
    sparse target costs two passes over the bars.
    """
    defined = np.flatnonzero(~np.isnan(target))
    wanted = np.sign(target[defined]).astype(np.int64)
    if not allow_short:
        np.maximum(wanted, 0, out=wanted)
    previous = np.empty_like(wanted)
    previous[:1] = 0
    previous[1:] = wanted[:-1]
    changed = wanted != previous
    return defined[changed], wanted[changed]


def _legs(candles: Candles, target: FloatArray, settings: BarSettings) -> _Legs:
    n = len(candles)
    signal_bars, states = position_changes(target, settings.allow_short)
    if settings.fill_timing is FillTiming.NEXT_OPEN:
        fill_bars = signal_bars + 1
        reference = candles.open
    else:
        fill_bars = signal_bars
        reference = candles.close
    # A fill on the last bar's close would be undone at once by the final close.
    usable = fill_bars < (n if settings.fill_timing is FillTiming.NEXT_OPEN else n - 1)
    fill_bars, states = fill_bars[usable], states[usable]
    fill_prices = reference[fill_bars]

    entries = np.flatnonzero(states != 0)
    has_next = entries + 1 < len(fill_bars)
    following = np.minimum(entries + 1, max(len(fill_bars) - 1, 0))
    if settings.end_of_data is EndOfData.LAST_OPEN:
        # An entry on the last open would be closed on that same open.
        keep = has_next | (fill_bars[entries] < n - 1)
        entries, has_next, following = entries[keep], has_next[keep], following[keep]
    direction = states[entries]
    end_price, end_reason = {
        EndOfData.LAST_CLOSE: (candles.close[-1] if n else 0.0, EXIT_END),
        EndOfData.LAST_OPEN: (candles.open[-1] if n else 0.0, EXIT_END),
        EndOfData.LEAVE_OPEN: (candles.close[-1] if n else 0.0, EXIT_OPEN),
    }[settings.end_of_data]
    if len(entries):
        exit_bar = np.where(has_next, fill_bars[following], n - 1)
        raw_exit = np.where(has_next, fill_prices[following], end_price)
    else:
        exit_bar, raw_exit = entries, np.zeros(0)
    slip = settings.slippage
    exit_reason = np.where(has_next, EXIT_SIGNAL, end_reason).astype(np.int64)
    # An open trade is marked at the close as it is, without slippage.
    exit_slip = np.where(exit_reason == EXIT_OPEN, 0.0, direction * slip)
    return _Legs(
        direction=direction,
        entry_bar=fill_bars[entries],
        exit_bar=exit_bar.astype(np.int64),
        entry_price=fill_prices[entries] * (1.0 + direction * slip),
        exit_price=raw_exit * (1.0 - exit_slip),
        exit_reason=exit_reason,
    )


def _apply_stops(candles: Candles, legs: _Legs, settings: BarSettings) -> _Legs:
    """Moves each trade's exit to the first bar whose low/high reaches a stop level."""
    exit_bar = legs.exit_bar.copy()
    exit_price = legs.exit_price.copy()
    exit_reason = legs.exit_reason.copy()
    next_open = settings.fill_timing is FillTiming.NEXT_OPEN
    stop_loss = settings.stop_loss if settings.stop_loss > 0 else math.inf
    take_profit = settings.take_profit if settings.take_profit > 0 else math.inf
    for k in range(len(legs.direction)):
        direction = int(legs.direction[k])
        entry = float(legs.entry_price[k])
        first = int(legs.entry_bar[k]) + (0 if next_open else 1)
        # An exit at an open (a signal's next-open fill, the last open at the end of
        # data) comes before anything that bar does.
        last = int(exit_bar[k]) - (1 if _exits_at_open(int(exit_reason[k]), settings) else 0)
        if last < first:
            continue
        low = candles.low[first : last + 1]
        high = candles.high[first : last + 1]
        if direction > 0:
            loss_level, profit_level = entry * (1 - stop_loss), entry * (1 + take_profit)
            loss_hit, profit_hit = low <= loss_level, high >= profit_level
        else:
            loss_level, profit_level = entry * (1 + stop_loss), entry * (1 - take_profit)
            loss_hit, profit_hit = high >= loss_level, low <= profit_level
        hit = loss_hit | profit_hit
        if not hit.any():
            continue
        offset = int(hit.argmax())
        bar = first + offset
        level = loss_level if loss_hit[offset] else profit_level
        opening = float(candles.open[bar])
        # A gap through the level fills at the open, which is beyond it.
        worse_for_long = loss_hit[offset] == (direction > 0)
        price = min(opening, level) if worse_for_long else max(opening, level)
        exit_bar[k] = bar
        exit_price[k] = price * (1.0 - direction * settings.slippage)
        exit_reason[k] = EXIT_STOP_LOSS if loss_hit[offset] else EXIT_TAKE_PROFIT
    return _Legs(
        legs.direction, legs.entry_bar, exit_bar, legs.entry_price, exit_price, exit_reason
    )


def _exits_at_open(reason: int, settings: BarSettings) -> bool:
    if reason == EXIT_SIGNAL:
        return settings.fill_timing is FillTiming.NEXT_OPEN
    return reason == EXIT_END and settings.end_of_data is EndOfData.LAST_OPEN


def _liquidation(
    candles: Candles,
    legs: _Legs,
    quantity: FloatArray,
    cash_in: FloatArray,
    settings: BarSettings,
) -> tuple[_Legs, FloatArray, FloatArray, FloatArray, Liquidation] | None:
    """The first trade whose equity reaches the maintenance requirement, closed there
    (see the module's docstring), with every later trade dropped; None if none does.

    Equity holding q units with cash c is c + d*q*p; the requirement is m*q*p, so the
    liquidation price is -c / (q*(1 - m)) for a long and c / (q*(1 + m)) for a short.
    Which trade breaches is found for all trades at once (range minima and maxima);
    only that trade is scanned bar by bar.
    """
    count = len(legs.direction)
    if count == 0:
        return None
    m = settings.maintenance_margin
    direction = legs.direction
    long = direction > 0
    level = np.where(long, -cash_in / (quantity * (1.0 - m)), cash_in / (quantity * (1.0 + m)))
    # Prices are positive: only a short or a long on borrowed cash can be liquidated (an
    # all-in long's cash is 0 give or take rounding, its level a hair above 0).
    if not np.any(level > _NEGLIGIBLE_PRICE * legs.entry_price):
        return None
    first = legs.entry_bar + (0 if settings.fill_timing is FillTiming.NEXT_OPEN else 1)
    # Whole bars held: up to the exit bar, or the bar before it when the exit fills at
    # that bar's open or at a stop (a stop's fill is checked as the exit fill below).
    reason = legs.exit_reason
    at_open = (reason == EXIT_SIGNAL) & (settings.fill_timing is FillTiming.NEXT_OPEN)
    at_open |= (reason == EXIT_END) & (settings.end_of_data is EndOfData.LAST_OPEN)
    whole_exit_bar = ~at_open & (reason != EXIT_STOP_LOSS)
    end = legs.exit_bar + whole_exit_bar.astype(np.int64)
    lowest = _range_extreme(candles.low, first, end, np.minimum)
    highest = _range_extreme(candles.high, first, end, np.maximum)
    with np.errstate(invalid="ignore"):
        in_bars = np.where(long, lowest <= level, highest >= level)
        at_exit = np.where(long, legs.exit_price <= level, legs.exit_price >= level)
    breached = np.flatnonzero(in_bars | at_exit)
    if len(breached) == 0:
        return None
    k = int(breached[0])
    d, liquidation_level = int(direction[k]), float(level[k])
    if in_bars[k]:
        start = int(first[k])
        extremes = (candles.low if d > 0 else candles.high)[start : int(end[k])]
        reached = extremes <= liquidation_level if d > 0 else extremes >= liquidation_level
        bar = start + int(reached.argmax())
        opening = float(candles.open[bar])
        gapped = opening <= liquidation_level if d > 0 else opening >= liquidation_level
        price = (opening if gapped else liquidation_level) * (1.0 - d * settings.slippage)
    else:
        bar, price = int(legs.exit_bar[k]), float(legs.exit_price[k])
    keep = np.arange(count) <= k
    legs = _select(legs, keep)
    exit_bar, exit_price, exit_reason = (
        legs.exit_bar.copy(),
        legs.exit_price.copy(),
        legs.exit_reason.copy(),
    )
    exit_bar[k], exit_price[k], exit_reason[k] = bar, price, EXIT_LIQUIDATION
    legs = _Legs(
        legs.direction, legs.entry_bar, exit_bar, legs.entry_price, exit_price, exit_reason
    )
    quantity, cash_in = quantity[keep], cash_in[keep]
    _, exit_flow = _cash_flows(quantity, legs, settings)
    cash_out = cash_in + exit_flow
    uncovered = max(0.0, -float(cash_out[k]))
    cash_out[k] = max(float(cash_out[k]), 0.0)
    return legs, quantity, cash_in, cash_out, Liquidation(bar=bar, uncovered_loss=uncovered)


def _range_extreme(
    values: FloatArray, start: IntArray, end: IntArray, reduce: np.ufunc
) -> FloatArray:
    """reduce(values[start[k]:end[k]]) for each k (NaN where the range is empty), in one
    numpy call: the ranges' bounds interleaved for `reduceat`, every other result kept."""
    if len(values) == 0:
        return np.full(len(start), np.nan)
    padded = np.append(values, values[-1])
    bounds = np.empty(2 * len(start), dtype=np.int64)
    bounds[0::2] = np.clip(start, 0, len(values))
    bounds[1::2] = np.clip(end, 0, len(values))
    reduced = reduce.reduceat(padded, bounds)[0::2]
    return np.where(bounds[1::2] > bounds[0::2], reduced, np.nan)


def _fee(quantity: FloatArray, price: FloatArray, settings: BarSettings) -> FloatArray:
    return np.where(quantity > 0, settings.fee_rate * quantity * price + settings.fee_fixed, 0.0)


def _size(legs: _Legs, settings: BarSettings) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Quantity of each trade (0: not taken) and the cash after its entry and exit."""
    if settings.sizing is Sizing.FIXED_QUANTITY:
        return _size_fixed(legs, settings)
    if settings.sizing is Sizing.FRACTION_OF_EQUITY:
        sized = _size_fraction(legs, settings)
        if sized is not None:
            return sized
    return size_sequentially(legs, settings)


def _cash_flows(
    quantity: FloatArray, legs: _Legs, settings: BarSettings
) -> tuple[FloatArray, FloatArray]:
    """Cash change at entry and at exit of each trade of `quantity` units."""
    signed = legs.direction * quantity
    entry_flow = -signed * legs.entry_price - _fee(quantity, legs.entry_price, settings)
    exit_flow = signed * legs.exit_price - _fee(quantity, legs.exit_price, settings)
    return entry_flow, exit_flow


def _size_fixed(legs: _Legs, settings: BarSettings) -> tuple[FloatArray, FloatArray, FloatArray]:
    quantity = np.full(len(legs.direction), settings.size)
    entry_flow, exit_flow = _cash_flows(quantity, legs, settings)
    cash_out = settings.initial_cash + np.cumsum(entry_flow + exit_flow)
    cash_in = cash_out - exit_flow
    return quantity, cash_in, cash_out


def _size_fraction(
    legs: _Legs, settings: BarSettings
) -> tuple[FloatArray, FloatArray, FloatArray] | None:
    """Closed form of the cash recursion when each trade commits `size` of the cash.

    With q = (f*C - F) / (p_in * (1 + r)), the cash after a trade is affine in the cash
    before it: C' = a*C + b. The products are taken in log space against overflow. None
    when some trade could not be afforded (the sequential path then skips it).
    """
    f, rate, fixed = settings.size, settings.fee_rate, settings.fee_fixed
    p_in, p_out, direction = legs.entry_price, legs.exit_price, legs.direction
    if len(direction) == 0:
        return _empty_sizing()
    unit_cost = p_in + rate * p_in
    # Cash change per unit of committed budget (f*C - F), by direction.
    gain = np.where(
        direction > 0,
        (p_out * (1.0 - rate) - unit_cost) / unit_cost,
        (p_in * (1.0 - rate) - p_out * (1.0 + rate)) / unit_cost,
    )
    a = 1.0 + f * gain
    b = -fixed * gain - 2.0 * fixed
    if np.any(a <= 0):
        return None
    log_growth = np.cumsum(np.log(a))
    growth = np.exp(log_growth)
    cash_out = growth * (settings.initial_cash + np.cumsum(b / growth))
    cash_before = np.concatenate(([settings.initial_cash], cash_out[:-1]))
    budget = f * cash_before - fixed
    if np.any(budget <= 0):
        return None
    quantity = budget / unit_cost
    entry_flow, _ = _cash_flows(quantity, legs, settings)
    return quantity, cash_before + entry_flow, cash_out


def size_sequentially(
    legs: _Legs, settings: BarSettings
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The cash recursion one trade at a time (plain floats: ~1 µs a trade)."""
    count = len(legs.direction)
    quantity, cash_in, cash_out = np.zeros(count), np.zeros(count), np.zeros(count)
    cash = settings.initial_cash
    rate, fixed, fraction = settings.fee_rate, settings.fee_fixed, settings.size
    for k, (direction, p_in, p_out) in enumerate(
        zip(
            legs.direction.tolist(),
            legs.entry_price.tolist(),
            legs.exit_price.tolist(),
            strict=True,
        )
    ):
        units = entry_units(settings.sizing, fraction, cash, p_in, fee_rate=rate, fee_fixed=fixed)
        if units <= 0:
            cash_in[k] = cash_out[k] = cash
            continue
        cash -= direction * units * p_in + rate * units * p_in + fixed
        cash_in[k] = cash
        cash += direction * units * p_out - rate * units * p_out - fixed
        cash_out[k] = cash
        quantity[k] = units
    return quantity, cash_in, cash_out


def _empty_sizing() -> tuple[FloatArray, FloatArray, FloatArray]:
    return np.zeros(0), np.zeros(0), np.zeros(0)


def _select(legs: _Legs, keep: BoolArray) -> _Legs:
    return _Legs(
        legs.direction[keep],
        legs.entry_bar[keep],
        legs.exit_bar[keep],
        legs.entry_price[keep],
        legs.exit_price[keep],
        legs.exit_reason[keep],
    )


def _mark(
    candles: Candles,
    trades: Trades,
    cash_in: FloatArray,
    cash_out: FloatArray,
    initial_cash: float,
) -> tuple[FloatArray, FloatArray]:
    """Equity and position at every close: piecewise-constant cash and quantity between
    fills (an exit and a re-entry on one bar: the later one holds at the close). A trade
    left open is held through the last close."""
    n = len(candles)
    count = len(trades)
    bars = np.empty(2 * count + 1, dtype=np.int64)
    cash = np.empty(2 * count + 1)
    held = np.zeros(2 * count + 1)
    bars[0], cash[0] = 0, initial_cash
    bars[1::2] = trades.entry_bar
    bars[2::2] = np.where(trades.exit_reason == EXIT_OPEN, n, trades.exit_bar)
    cash[1::2], cash[2::2] = cash_in, cash_out
    held[1::2] = trades.direction * trades.quantity
    lengths = np.diff(np.append(bars, n))
    position = np.repeat(held, lengths)
    equity = np.repeat(cash, lengths) + position * candles.close
    return equity, position
