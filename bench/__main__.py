"""`make bench`: runs every section, prints one table, writes bench/results.json and
bench/results.md, and puts the markdown table into the README."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import backtest, exchange, gateway, portfolio, risk, stack, startup
from bench.report import Row, machine, table, update_readme, write

# Each section measures EdgeQuant beside its baseline in the same run.
SECTIONS = (
    startup.run,
    stack.run,
    exchange.run,
    risk.run,
    portfolio.run,
    backtest.run,
    gateway.run,
)
HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"


async def main() -> None:
    on = machine()  # before the run: the load of other work, not of the bench
    rows: list[Row] = []
    for section in SECTIONS:
        rows += await section()
    print(table(rows))
    text = write(rows, on, HERE / "results.json", HERE / "results.md")
    print(f"\nwritten to {HERE / 'results.json'} and {HERE / 'results.md'}")
    if update_readme(README, text):
        print(f"and into {README}")


asyncio.run(main())
