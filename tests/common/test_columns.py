"""DecimalText keeps a Decimal exact through a real SQLite table, in plain notation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text

from common.columns import DecimalText


def test_amounts_come_back_exact_and_are_stored_in_plain_notation(tmp_path: Path) -> None:
    metadata = MetaData()
    amounts = Table(
        "amounts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("amount", DecimalText, nullable=True),
    )
    values = [Decimal("0.00125"), Decimal("1E+2"), Decimal("1.50"), Decimal("-7E-18"), None]
    engine = create_engine(f"sqlite:///{tmp_path / 'amounts.db'}")
    with engine.begin() as connection:
        metadata.create_all(connection)
        connection.execute(insert(amounts), [{"id": i, "amount": v} for i, v in enumerate(values)])
        read = list(connection.scalars(select(amounts.c.amount).order_by(amounts.c.id)))
        stored = list(connection.scalars(text("SELECT amount FROM amounts ORDER BY id")))
    engine.dispose()

    assert read == values
    assert read[2].as_tuple() == Decimal("1.50").as_tuple()  # its scale kept
    assert stored == ["0.00125", "100", "1.50", "-0.000000000000000007", None]
