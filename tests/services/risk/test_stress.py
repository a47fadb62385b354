"""Stress tests: symbol shocks win over asset shocks; exact PnL; no mark, no answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.errors import FailedPrecondition
from services.risk.risk_book import Market, Position, RiskBook
from services.risk.stress import PriceShock, run_stress_test


def make_book() -> RiskBook:
    return RiskBook(
        markets={
            "BTC/USDT": Market("BTC/USDT", "BTC", "USDT"),
            "BTC/EUR": Market("BTC/EUR", "BTC", "EUR"),
            "ETH/USDT": Market("ETH/USDT", "ETH", "USDT"),
        },
        marks={
            "BTC/USDT": Decimal("60000"),
            "BTC/EUR": Decimal("55000"),
            "ETH/USDT": Decimal("3000"),
        },
        positions={
            "BTC/USDT": Position(quantity=Decimal("0.5")),
            "BTC/EUR": Position(quantity=Decimal("-0.1")),
            "ETH/USDT": Position(quantity=Decimal("2")),
            "SOL/USDT": Position(quantity=Decimal("0")),
        },
    )


def test_shocks_by_asset_and_by_symbol() -> None:
    results = run_stress_test(
        make_book(),
        [PriceShock("BTC", Decimal("-0.2")), PriceShock("BTC/EUR", Decimal("0.1"))],
    )
    pnl = {r.symbol: r.pnl for r in results}
    assert pnl == {
        "BTC/USDT": Decimal("-6000.0"),  # 0.5 * (48,000 - 60,000)
        "BTC/EUR": Decimal("-550.0"),  # short 0.1 while the price rises 5,500
        "ETH/USDT": Decimal("0"),  # not shocked
    }
    assert next(r for r in results if r.symbol == "BTC/USDT").shocked_price == Decimal("48000.0")


def test_a_position_without_a_mark_cannot_be_stressed() -> None:
    book = make_book()
    del book.marks["ETH/USDT"]
    with pytest.raises(FailedPrecondition) as raised:
        run_stress_test(book, [])
    assert raised.value.reason == "RISK_NO_MARK_PRICE"
