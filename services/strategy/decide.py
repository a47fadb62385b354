"""The runner's decision rules, pure: the bar engine's position semantics on the
runner's own capital (see services/backtest/bars/engine.py and strategies/sizing.py).

- The strategy's newest output sets the wanted position: +1 long, -1 short, 0 flat, NaN
  keeps the last one; without shorting, -1 means flat.
- The runner trades only where the wanted position changes (as the engine does: after
  a stop it stays flat until the next change), and then orders only the difference
  between the new position and the one it holds.
- An entry is sized by the engine's sizing function from the runner's cash after the
  exit of what it held (a reversal closes, then opens from the proceeds), at the
  decision's reference price, rounded down to the venue's lot.
- Entries paused: only the part of the difference that reduces the position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from services.strategy.runners import ZERO, MarketRules, Runner
from strategies.sizing import entry_units


def wanted(signal: float | None, previous: int, allow_short: bool) -> int:
    """The wanted position after a bar whose strategy output is `signal`."""
    if signal is None or math.isnan(signal):
        return previous
    direction = int(math.copysign(1, signal)) if signal != 0 else 0
    if direction < 0 and not allow_short:
        return 0
    return direction


def sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


@dataclass(frozen=True)
class Order:
    # Signed: negative sells; 0 means no order.
    quantity: Decimal
    # Why no order (or a smaller one) was sent; empty otherwise.
    note: str = ""


def order_for(
    runner: Runner, new_target: int, price: Decimal, market: MarketRules, fee_fixed: float = 0.0
) -> Order:
    """The order that moves the runner from what it holds to `new_target` at `price`."""
    held = runner.position
    if new_target != 0 and sign(held) == new_target:
        return Order(ZERO)
    desired = ZERO
    if new_target != 0:
        rate = float(market.taker_fee)
        # The cash after closing what it holds, as the engine sizes a reversal.
        cash_after_exit = float(runner.cash) + float(held) * float(price)
        if held != 0:
            cash_after_exit -= rate * abs(float(held)) * float(price) + fee_fixed
        units = entry_units(
            runner.sizing,
            float(runner.size),
            cash_after_exit,
            float(price),
            fee_rate=rate,
            fee_fixed=fee_fixed,
        )
        desired = new_target * round_down(Decimal(repr(max(units, 0.0))), market)
    difference = desired - held
    note = ""
    if runner.entries_paused:
        reducing = _reducing_part(held, difference)
        if reducing != difference:
            note = "entries paused: only the reducing part is ordered"
        difference = reducing
    difference = sign(difference) * round_down(abs(difference), market)
    if difference == 0:
        return Order(ZERO, note)
    if abs(difference) < market.min_quantity:
        return Order(ZERO, f"{abs(difference)} is below the venue's minimum quantity")
    if abs(difference) * price < market.min_notional:
        return Order(ZERO, f"{abs(difference) * price} is below the venue's minimum notional")
    return Order(difference, note)


def _reducing_part(held: Decimal, difference: Decimal) -> Decimal:
    """The part of `difference` that brings `held` toward 0, never past it."""
    if held == 0 or sign(difference) == sign(held) or difference == 0:
        return ZERO
    return max(-abs(held), min(abs(held), abs(difference))) * sign(difference)


def round_down(quantity: Decimal, market: MarketRules) -> Decimal:
    step = market.quantity_increment
    if step <= 0:
        return quantity
    return (quantity / step).to_integral_value(rounding=ROUND_DOWN) * step


def stop_levels(runner: Runner) -> tuple[Decimal | None, Decimal | None]:
    """The stop-loss and take-profit prices of the open position (None: off or flat)."""
    held = runner.position
    if held == 0 or runner.entry_price == 0:
        return None, None
    direction = sign(held)
    loss = profit = None
    if runner.stop_loss > 0:
        loss = runner.entry_price * (1 - direction * runner.stop_loss)
    if runner.take_profit > 0:
        profit = runner.entry_price * (1 + direction * runner.take_profit)
    return loss, profit


def crossed(runner: Runner, mark: Decimal) -> str:
    """ "stop_loss" or "take_profit" when `mark` reaches a level (stop-loss first), or ""."""
    loss, profit = stop_levels(runner)
    direction = sign(runner.position)
    if loss is not None and (mark <= loss if direction > 0 else mark >= loss):
        return "stop_loss"
    if profit is not None and (mark >= profit if direction > 0 else mark <= profit):
        return "take_profit"
    return ""


def apply_fill(
    runner: Runner,
    quantity: Decimal,
    *,
    price: Decimal,
    fee: Decimal,
    fee_currency: str,
    market: MarketRules,
) -> Runner:
    """The runner after one of its own fills: position, cash and average entry price."""
    held = runner.position
    position = held + quantity
    cash = runner.cash - quantity * price
    if fee_currency == market.base:
        position -= fee if quantity > 0 else ZERO
        cash -= fee * price if quantity < 0 else ZERO
    else:
        cash -= fee
    if position == 0:
        entry = ZERO
    elif sign(held) == sign(position) and abs(position) > abs(held):
        entry = (runner.entry_price * abs(held) + price * abs(quantity)) / abs(position)
    elif sign(held) != sign(position):
        entry = price
    else:
        entry = runner.entry_price
    return runner.but(position=position, cash=cash, entry_price=entry)
