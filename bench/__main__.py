"""`make bench`: runs every section, prints one table, writes bench/results.json and
bench/results.md, and puts the markdown table into the README.

A section that cannot complete is one FAILED row with its reason (the table says which);
the other sections still run, and the bench exits 1 without touching the README.
`BENCH_SIZE=tiny` runs every section at a size that only proves it finishes (the
`bench` test does); its results go to BENCH_OUTPUT (a directory), never into bench/.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bench import (
    backtest,
    cluster,
    exchange,
    gateway,
    install,
    portfolio,
    postgres,
    risk,
    stack,
    startup,
    strategy,
    web,
)
from bench.report import machine, table, update_readme, write
from bench.runner import Section, run_sections, soak_rows
from bench.section import TINY

# Each section measures EdgeQuant beside its baseline in the same run.
SECTIONS: dict[str, Section] = {
    "startup": startup.run,
    "stack": stack.run,
    "exchange": exchange.run,
    "risk": risk.run,
    "portfolio": portfolio.run,
    "postgres": postgres.run,
    "backtest": backtest.run,
    "cluster": cluster.run,
    "strategy": strategy.run,
    "gateway": gateway.run,
    "web": web.run,
    "install": install.run,
}
HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
SOAK_RESULTS = HERE / "soak-results.json"


async def main() -> int:
    on = machine()  # before the run: the load of other work, not of the bench
    rows, failed = await run_sections(SECTIONS)
    if not TINY:
        rows += soak_rows(SOAK_RESULTS)
    print(table(rows))
    for row in rows:
        if row.failed:
            print(f"\n{row.section} FAILED: {row.failed}")
    output = Path(os.environ["BENCH_OUTPUT"]) if "BENCH_OUTPUT" in os.environ else HERE
    if TINY and "BENCH_OUTPUT" not in os.environ:
        print("\ntiny run: nothing written (set BENCH_OUTPUT to keep its results)")
    else:
        text = write(rows, on, output / "results.json", output / "results.md")
        print(f"\nwritten to {output / 'results.json'} and {output / 'results.md'}")
        if not TINY and not failed and update_readme(README, text):
            print(f"and into {README}")
    if failed:
        print(f"FAIL: {', '.join(failed)} did not complete", file=sys.stderr)
        return 1
    return 0


sys.exit(asyncio.run(main()))
