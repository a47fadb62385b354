"""Past trades from a file: CSV or ccxt-shaped JSON (the list fetchMyTrades returns).

Parsing is all or nothing: the whole file is read and checked before the ledger sees
any of it, and the first bad line (CSV) or trade (JSON) is named in an
INVALID_ARGUMENT on the field `content`. Numbers in JSON are read as Decimal, never
through float.

CSV: a header `time,symbol,side,quantity,price,fee,fee_currency,trade_id[,order_id]`,
then one fill per line; `time` is ISO 8601 (UTC if no offset) or epoch milliseconds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from common.errors import FieldViolation, InvalidArgument
from common.validation import Violations
from services.portfolio.accounting import Trade, TradeSide

CSV_COLUMNS = ("time", "symbol", "side", "quantity", "price", "fee", "fee_currency", "trade_id")
MAX_FILLS = 200_000


class _BadRecord(Exception):
    pass


def parse_csv(content: str, venue: str) -> list[Trade]:
    reader = csv.reader(io.StringIO(content))
    header = next(reader, None)
    if header is None:
        raise _invalid("line 1: the file is empty; expected a header")
    header = [name.strip().lower() for name in header]
    if tuple(header[: len(CSV_COLUMNS)]) != CSV_COLUMNS or len(header) > len(CSV_COLUMNS) + 1:
        raise _invalid(f"line 1: the header must be {','.join(CSV_COLUMNS)}[,order_id]")
    trades = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise _invalid(f"line {line}: expected {len(header)} fields, got {len(row)}")
        record = dict(zip(header, (cell.strip() for cell in row), strict=True))
        trades.append(_at(f"line {line}", record, venue, _csv_time))
        _check_size(trades)
    return trades


def parse_ccxt_json(content: str, venue: str) -> list[Trade]:
    try:
        document = json.loads(content, parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError as error:
        raise _invalid(f"line {error.lineno}: not JSON: {error.msg}") from None
    if not isinstance(document, list):
        raise _invalid("line 1: expected a JSON list of ccxt trades")
    trades = []
    for index, item in enumerate(document):
        if not isinstance(item, Mapping):
            raise _invalid(f"trade {index}: expected an object")
        record = {
            "time": item.get("timestamp") or item.get("datetime"),
            "symbol": item.get("symbol"),
            "side": item.get("side"),
            "quantity": item.get("amount"),
            "price": item.get("price"),
            "fee": (item.get("fee") or {}).get("cost"),
            "fee_currency": (item.get("fee") or {}).get("currency"),
            "trade_id": item.get("id"),
            "order_id": item.get("order"),
        }
        text = {key: _text(value) for key, value in record.items()}
        trades.append(_at(f"trade {index}", text, venue, _ccxt_time))
        _check_size(trades)
    return trades


def _text(value: object) -> str:
    if value is None:
        return ""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _at(
    where: str, record: Mapping[str, str], venue: str, parse_time: Callable[[str], datetime]
) -> Trade:
    """The record's trade, or an INVALID_ARGUMENT that says where the record is."""
    try:
        return _trade(record, venue, parse_time)
    except _BadRecord as error:
        raise _invalid(f"{where}: {error}") from None


def _trade(record: Mapping[str, str], venue: str, parse_time: Callable[[str], datetime]) -> Trade:
    checks = Violations()
    quantity = checks.decimal("quantity", record["quantity"], positive=True)
    price = checks.decimal("price", record["price"], positive=True)
    fee = checks.decimal("fee", record.get("fee") or "0", non_negative=True)
    side = record["side"].lower()
    checks.require(side in ("buy", "sell"), "side", f"must be buy or sell, got {side!r}")
    checks.require("/" in record["symbol"], "symbol", "must be a unified symbol like BTC/USDT")
    checks.require(bool(record["trade_id"]), "trade_id", "is required")
    checks.require(
        bool(record.get("fee_currency")) or not fee, "fee_currency", "is required with a fee"
    )
    time: datetime | None = None
    try:
        time = parse_time(record["time"])
    except ValueError:
        checks.add("time", f"must be ISO 8601 or epoch milliseconds, got {record['time']!r}")
    try:
        checks.raise_if_any()
    except InvalidArgument as error:
        raise _BadRecord(
            "; ".join(f"{v.field} {v.description}" for v in error.violations)
        ) from None
    assert quantity is not None
    assert price is not None
    assert fee is not None
    assert time is not None
    return Trade(
        venue=venue,
        trade_id=record["trade_id"],
        symbol=record["symbol"],
        side=TradeSide(side),
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=record.get("fee_currency") or "",
        time=time,
        order_id=record.get("order_id") or "",
    )


def _csv_time(text: str) -> datetime:
    if text.isdigit():
        return _ccxt_time(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ccxt_time(text: str) -> datetime:
    if text.isdigit():
        milliseconds = int(text)
        return datetime.fromtimestamp(milliseconds // 1000, UTC).replace(
            microsecond=milliseconds % 1000 * 1000
        )
    return _csv_time(text)


def _check_size(trades: list[Any]) -> None:
    if len(trades) > MAX_FILLS:
        raise _invalid(f"more than {MAX_FILLS} fills in one file: split it")


def _invalid(description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation("content", description)])


PARSERS: dict[str, Callable[[str, str], list[Trade]]] = {
    "csv": parse_csv,
    "ccxt_json": parse_ccxt_json,
}
