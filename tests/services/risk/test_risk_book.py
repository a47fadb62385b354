"""The book: cash follows the positions, losing trades are counted, rate windows slide,
stale position updates are ignored, equity marks the peak and the UTC day."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D  # noqa: N817 - amounts read better short

from services.risk.risk_book import SOURCES, OpenOrder, OrderSide, Position, RiskBook

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def apply(book: RiskBook, quantity: str, cost: str, realized: str, second: int) -> bool:
    moment = datetime(2026, 11, 22, 12, 0, second, tzinfo=UTC)
    return book.apply_position(
        "BTC/USDT",
        quantity=D(quantity),
        cost_basis=D(cost),
        realized_pnl=D(realized),
        update_time=moment,
        now=moment,
    )


def test_cash_follows_fills_and_losing_trades_are_counted() -> None:
    book = RiskBook(cash=D("10000"))
    apply(book, "0.1", "5000", "0", 1)  # bought 0.1 at 50,000
    assert book.cash == D("5000")
    apply(book, "0.05", "2500", "-100", 2)  # sold 0.05 at 48,000: 2,400 back, -100 realized
    assert book.cash == D("7400")
    assert book.losing_streak == 1
    apply(book, "0", "0", "-150", 3)  # sold the rest at 49,000
    assert (book.cash, book.losing_streak) == (D("9850"), 2)
    apply(book, "0.1", "5000", "-150", 4)  # a buy realizes nothing: the streak stands
    assert book.losing_streak == 2
    apply(book, "0", "0", "50", 5)  # a winning exit ends it
    assert book.losing_streak == 0


def test_an_older_position_update_is_ignored() -> None:
    book = RiskBook(cash=D("100"))
    assert apply(book, "1", "10", "0", 5)
    assert not apply(book, "2", "20", "0", 4)
    assert book.position("BTC/USDT") == D("1")


def test_rate_windows_slide_and_stop_counting_at_the_limit() -> None:
    book = RiskBook()
    for moment in (0.0, 30.0, 59.5, 60.2, 60.4):
        book.record_submission(moment)
    assert book.submissions_within(60.5, 1.0, up_to=100) == 2  # 59.5 is a second old
    assert book.submissions_within(60.5, 60.0, up_to=100) == 4  # 0.0 fell out
    assert book.submissions_within(60.5, 60.0, up_to=2) == 2


def test_equity_marks_the_peak_and_the_utc_day() -> None:
    book = RiskBook(
        cash=D("1000"),
        marks={"BTC/USDT": D("100")},
        positions={"BTC/USDT": Position(quantity=D("10"))},
    )
    book.mark_equity(T0)
    assert (book.equity_peak, book.day_start_equity) == (D("2000"), D("2000"))
    book.marks["BTC/USDT"] = D("50")
    book.mark_equity(T0)
    assert book.daily_loss() == D("500")
    assert book.drawdown() == D("0.25")
    book.mark_equity(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))  # a new UTC day
    assert (book.day_start_equity, book.daily_loss(), book.equity_peak) == (
        D("1500"),
        D("0"),
        D("2000"),
    )


def test_fresh_needs_every_feed_and_a_mark_for_every_position() -> None:
    book = RiskBook(positions={"BTC/USDT": Position(quantity=D("1"))})
    book.synced = set(SOURCES)
    assert not book.fresh
    assert book.stale_sources() == ["marks of BTC/USDT"]
    book.marks["BTC/USDT"] = D("1")
    assert book.fresh


def test_open_orders_count_on_their_side_and_value() -> None:
    book = RiskBook(marks={"BTC/USDT": D("100")})
    book.open_orders["a"] = OpenOrder("a", "BTC/USDT", OrderSide.BUY, D("2"), D("90"))
    book.open_orders["b"] = OpenOrder("b", "BTC/USDT", OrderSide.SELL, D("1"), None)  # market
    assert book.open_quantity("BTC/USDT", OrderSide.BUY) == D("2")
    assert book.open_buy_notional() == D("180")
    assert book.gross_exposure() == D("280")
