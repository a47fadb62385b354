"""Position arithmetic on hand-worked sequences; each expected figure is worked out beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.portfolio.accounting import (
    AverageCost,
    CostMethod,
    Fifo,
    Position,
    Trade,
    TradeSide,
    balance_changes,
    replay,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def q(*values: object) -> tuple[Decimal, ...]:
    """Expected figures as Decimals: q(2, "0.5") == (Decimal(2), Decimal("0.5"))."""
    return tuple(Decimal(str(value)) for value in values)


def fill(n: int, side: str, quantity: str, price: str, *fee_and_currency: str) -> Trade:
    fee, fee_currency = (*fee_and_currency, "USDT")[:2] if fee_and_currency else ("0", "USDT")
    return Trade(
        venue="paper",
        trade_id=str(n),
        symbol="BTC/USDT",
        side=TradeSide(side),
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal(fee),
        fee_currency=fee_currency,
        time=T0 + timedelta(minutes=n),
    )


def test_long_with_partial_closes_and_quote_fees() -> None:
    position = Position("BTC/USDT")
    assert position.apply(fill(1, "buy", "2", "100", "0.2")) is None
    assert (position.quantity, position.average_price, position.fees) == q(2, 100, "0.2")
    position.apply(fill(2, "buy", "1", "130", "0.13"))
    # (2*100 + 1*130) / 3 = 110
    assert (position.quantity, position.average_price, position.fees) == q(3, 110, "0.33")
    position.apply(fill(3, "sell", "1.5", "120", "0.18"))
    # 1.5 * (120 - 110) = 15 realized; the rest keeps its entry price.
    assert (position.quantity, position.average_price) == q("1.5", 110)
    assert position.realized_pnl == 15
    assert position.cost_basis == Decimal("165")  # 1.5 * 110
    assert position.unrealized_pnl(Decimal("120")) == 15  # 180 - 165
    round_trip = position.apply(fill(4, "sell", "1.5", "100", "0.15"))
    # 15 + 1.5 * (100 - 110) = 0 realized; fees 0.2 + 0.13 + 0.18 + 0.15 = 0.66.
    assert (position.quantity, position.average_price) == q(0, 0)
    assert position.realized_pnl == 0
    assert position.fees == Decimal("0.66")
    assert round_trip is not None
    assert round_trip.pnl == Decimal("-0.66")
    assert (round_trip.open_time, round_trip.close_time) == (
        fill(1, "buy", "1", "1").time,
        T0 + timedelta(minutes=4),
    )


def test_short_then_flip_through_zero() -> None:
    position = Position("BTC/USDT")
    position.apply(fill(1, "sell", "2", "50", "0.1"))
    assert (position.quantity, position.average_price) == q(-2, 50)
    assert position.cost_basis == -100
    position.apply(fill(2, "buy", "0.5", "40", "0.02"))
    # Covering 0.5 of a short at 50 for 40: +0.5 * 10 = 5.
    assert (position.quantity, position.realized_pnl) == q("-1.5", 5)
    assert position.unrealized_pnl(Decimal("60")) == Decimal("-15")  # -1.5 * (60 - 50)
    round_trip = position.apply(fill(3, "buy", "3", "45", "0.135"))
    # Covers 1.5 at 45: +1.5 * 5 = 7.5 (12.5 in all); the other 1.5 opens a long at 45.
    assert (position.quantity, position.average_price) == q("1.5", 45)
    assert position.realized_pnl == Decimal("12.5")
    assert round_trip is not None
    assert round_trip.pnl == Decimal("12.245")  # 12.5 - (0.1 + 0.02 + 0.135)
    assert position.market_value(Decimal("47")) == Decimal("70.5")
    assert position.unrealized_pnl(Decimal("47")) == 3  # 1.5 * (47 - 45)
    assert position.open_time == T0 + timedelta(minutes=3)


def test_fee_in_base_currency_reduces_the_position() -> None:
    position = Position("BTC/USDT")
    position.apply(fill(1, "buy", "1", "100", "0.001", "BTC"))
    # The venue keeps 0.001 BTC: 0.999 held, at 100 each; the fee is worth 0.1 USDT.
    assert (position.quantity, position.average_price, position.realized_pnl) == q("0.999", 100, 0)
    assert position.fees == Decimal("0.1")
    position.apply(fill(2, "sell", "0.5", "110", "0.055"))
    # 0.5 * (110 - 100) = 5 realized.
    assert (position.quantity, position.realized_pnl, position.fees) == q("0.499", 5, "0.155")
    # Cross-check against the cash: -100 + 55 - 0.055 = -45.055 USDT and 0.499 BTC at 120
    # (59.88) is 14.825 of equity from 0; so must realized + unrealized - fees be.
    unrealized = position.unrealized_pnl(Decimal("120"))
    assert unrealized == Decimal("9.98")
    assert position.realized_pnl + unrealized - position.fees == Decimal("14.825")


def test_fee_in_base_currency_on_a_sell_realizes_its_gain() -> None:
    position = Position("BTC/USDT")
    position.apply(fill(1, "buy", "2", "100"))
    position.apply(fill(2, "sell", "1", "110", "0.001", "BTC"))
    # 1 * 10 on the sale, and the 0.001 BTC the venue keeps leaves at 110 too: 0.01.
    assert (position.quantity, position.realized_pnl, position.fees) == q("0.999", "10.01", "0.11")
    # Cash: -200 + 110 = -90; 0.999 BTC at 110 = 109.89: equity 19.89 from 0.
    net = position.realized_pnl + position.unrealized_pnl(Decimal("110")) - position.fees
    assert net == Decimal("19.89")


def test_fee_in_a_third_currency_only_moves_its_balance() -> None:
    trade = fill(1, "buy", "0.5", "100", "0.01", "BNB")
    position = Position("BTC/USDT")
    position.apply(trade)
    assert position.fees == 0
    assert balance_changes(trade) == {
        "BTC": Decimal("0.5"),
        "USDT": Decimal("-50"),
        "BNB": Decimal("-0.01"),
    }


def test_balance_changes_of_a_sell_with_quote_fee() -> None:
    assert balance_changes(fill(1, "sell", "2", "50", "0.1")) == {
        "BTC": Decimal("-2"),
        "USDT": Decimal("99.9"),
    }


def test_fifo_matches_oldest_lots_first() -> None:
    trades = [
        fill(1, "buy", "2", "100"),
        fill(2, "buy", "1", "130"),
        fill(3, "sell", "1.5", "120"),
    ]
    fifo = replay(trades, CostMethod.FIFO)["BTC/USDT"]
    average = replay(trades, CostMethod.AVERAGE_COST)["BTC/USDT"]
    # FIFO: 1.5 of the lot at 100 -> 1.5 * 20 = 30; left: 0.5 @ 100 and 1 @ 130.
    assert fifo.realized_pnl == 30
    assert fifo.cost_basis == Decimal("180")  # 50 + 130
    assert fifo.average_price == Decimal("120")
    # Average cost: 1.5 * (120 - 110) = 15.
    assert average.realized_pnl == 15
    # Flat again, both methods agree on the total.
    trades.append(fill(4, "sell", "1.5", "100"))
    assert replay(trades, CostMethod.FIFO)["BTC/USDT"].realized_pnl == 0  # 0.5*0 + 1*(-30)
    assert replay(trades, CostMethod.AVERAGE_COST)["BTC/USDT"].realized_pnl == 0


def test_fifo_flip_through_zero() -> None:
    basis = Fifo()
    assert basis.fill(Decimal("-1"), Decimal("10")) == 0
    assert basis.fill(Decimal("3"), Decimal("8")) == Decimal("2")  # covers 1 at 10 for 8
    assert (basis.quantity, basis.average_price) == q(2, 8)


def test_average_cost_exact_close_resets_entry() -> None:
    basis = AverageCost()
    basis.fill(Decimal("1"), Decimal("10"))
    assert basis.fill(Decimal("-1"), Decimal("12")) == 2
    assert (basis.quantity, basis.average_price) == q(0, 0)


def test_average_entry_price_is_rounded_to_8_decimals() -> None:
    """Three buys whose average repeats forever: kept to 8 places, half-even, not 28
    digits; the realized PnL is against that price."""
    position = Position("BTC/USDT")
    for n, price in enumerate(("61662.01", "61700", "61650"), start=1):
        position.apply(fill(n, "buy", "0.001", price))
    # (61662.01 + 61700 + 61650) / 3 = 61670.67000000...; then one more at 61661.99.
    assert position.average_price == Decimal("61670.67")
    position.apply(fill(4, "buy", "0.002", "61661.99"))
    # (0.003 * 61670.67 + 0.002 * 61661.99) / 0.005 = 61667.198
    assert position.average_price == Decimal("61667.198")
    position.apply(fill(5, "buy", "0.0007", "61661.11"))
    # (0.005 * 61667.198 + 0.0007 * 61661.11) / 0.0057 = 61666.45035087719298...
    assert position.average_price == Decimal("61666.45035088")
    assert -position.average_price.as_tuple().exponent <= 8  # type: ignore[operator]
    position.apply(fill(6, "sell", "0.0057", "61700"))
    assert position.realized_pnl == Decimal("0.0057") * (Decimal(61700) - Decimal("61666.45035088"))
    # FIFO's average is rounded the same way.
    fifo = replay(
        [fill(1, "buy", "3", "1"), fill(2, "buy", "3", "2"), fill(3, "buy", "3", "2")],
        CostMethod.FIFO,
    )
    assert fifo["BTC/USDT"].average_price == Decimal("1.66666667")
