"""`make bench`: runs every section, prints one table, writes bench/results.json."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import backtest, exchange, gateway, portfolio, risk, startup
from bench.report import Row, table, write_json

# Each section measures EdgeQuant beside its baseline in the same run.
SECTIONS = (startup.run, exchange.run, risk.run, portfolio.run, backtest.run, gateway.run)
RESULTS = Path(__file__).resolve().parent / "results.json"


async def main() -> None:
    rows: list[Row] = []
    for section in SECTIONS:
        rows += await section()
    print(table(rows))
    write_json(rows, RESULTS)
    print(f"\nwritten to {RESULTS}")


asyncio.run(main())
