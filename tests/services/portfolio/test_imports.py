"""Parsing past trades: exact numbers, times in UTC, and errors that name the line."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.errors import InvalidArgument
from services.portfolio.imports import parse_ccxt_json, parse_csv

HEADER = "time,symbol,side,quantity,price,fee,fee_currency,trade_id"


def _error(raised: pytest.ExceptionInfo[InvalidArgument]) -> str:
    (violation,) = raised.value.violations
    assert violation.field == "content"
    return violation.description


def test_csv_times_and_amounts() -> None:
    content = (
        f"{HEADER}\n"
        "2025-03-01T10:00:00,ETH/BTC,SELL,1.50,0.0312,0.00004,BTC,a\n"
        "\n"
        "1740830400123,ETH/BTC,buy,2,0.03,,,b\n"
    )
    first, second = parse_csv(content, "kraken")
    assert first.time == datetime(2025, 3, 1, 10, tzinfo=UTC)  # no offset: UTC
    assert (first.side.value, first.quantity, first.fee) == (
        "sell",
        Decimal("1.50"),
        Decimal("0.00004"),
    )
    assert second.time == datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert (second.fee, second.fee_currency, second.venue) == (Decimal(0), "", "kraken")


@pytest.mark.parametrize(
    ("content", "description"),
    [
        ("", "line 1: the file is empty"),
        ("when,what\n", "line 1: the header must be"),
        (f"{HEADER}\n2025-03-01,BTC/USDT,buy,1,1e3,0,USDT,a\n", "line 2: price must be a decimal"),
        (f"{HEADER}\nyesterday,BTC/USDT,buy,1,1,0,USDT,a\n", "line 2: time must be ISO 8601"),
        (
            f"{HEADER}\n2025-03-01,BTC/USDT,buy,1,1,0,USDT,a\n2025-03-01,BTCUSDT,buy,1,1,0,USDT,b\n",
            "line 3: symbol must be a unified symbol",
        ),
        (f"{HEADER}\n2025-03-01,BTC/USDT,buy,0,1,0.1,,a\n", "line 2: quantity must be greater"),
    ],
)
def test_csv_errors_name_the_line(content: str, description: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_csv(content, "paper")
    assert _error(raised).startswith(description)


def test_ccxt_json_keeps_every_digit() -> None:
    content = (
        '[{"id": "9", "timestamp": 1698138992358, "symbol": "BTC/USDT", "side": "buy",'
        ' "price": 36567.10000000001, "amount": 1e-05, "fee": {"cost": 1.2e-7, "currency": "BTC"}}]'
    )
    (trade,) = parse_ccxt_json(content, "binance")
    assert trade.price == Decimal("36567.10000000001")
    assert trade.quantity == Decimal("0.00001")
    assert trade.fee == Decimal("0.00000012")
    assert trade.time == datetime(2023, 10, 24, 9, 16, 32, 358000, tzinfo=UTC)


def test_ccxt_json_errors() -> None:
    with pytest.raises(InvalidArgument) as syntax:
        parse_ccxt_json('[\n{"id": "1",\n oops}]', "binance")
    assert _error(syntax).startswith("line 3: not JSON")
    with pytest.raises(InvalidArgument) as missing:
        parse_ccxt_json(
            '[{"id": "1", "timestamp": 1, "symbol": "A/B", "side": "buy",'
            ' "price": 1, "amount": 1}, {"id": "2"}]',
            "binance",
        )
    assert _error(missing).startswith("trade 1: ")
    with pytest.raises(InvalidArgument) as shape:
        parse_ccxt_json('{"trades": []}', "binance")
    assert "JSON list" in _error(shape)
