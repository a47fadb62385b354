"""`make bench` can finish: every section runs at a tiny size in a process of its own, as
`make bench` runs them, and none fails. A section that fails is marked in the table, with
its reason, and the others still run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.http import HttpError
from bench.report import Row, table
from bench.runner import run_sections

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {
    "startup",
    "stack",
    "exchange",
    "risk",
    "portfolio",
    "postgres",
    "backtest",
    "cluster",
    "strategy",
    "gateway",
    "web",
    "install",
}


@pytest.mark.bench
def test_every_bench_section_finishes_at_a_tiny_size(tmp_path: Path) -> None:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("EDGEQUANT_")
    }
    environment.update(BENCH_SIZE="tiny", BENCH_OUTPUT=str(tmp_path))

    completed = subprocess.run(
        [sys.executable, "-m", "bench"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,  # a hang must not hold the suite; the run itself takes far less
        check=False,
    )

    document = json.loads((tmp_path / "results.json").read_text())
    failed = {row["section"]: row["failed"] for row in document["rows"] if row["failed"]}
    assert failed == {}, completed.stderr[-4000:]
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert {row["section"] for row in document["rows"]} == SECTIONS
    assert "FAILED" not in (tmp_path / "results.md").read_text()


async def test_a_failing_section_is_marked_with_its_reason_and_the_rest_still_run() -> None:
    status = b'{"code":9,"message":"USDT needed exceeds the cash","details":[]}'

    async def refused() -> list[Row]:
        raise HttpError(400, status)

    async def measured() -> list[Row]:
        return [Row("fine", "a measure", "ms", 1.5)]

    rows, failed = await run_sections({"broken": refused, "fine": measured})

    assert failed == ["broken"]
    assert [row.section for row in rows] == ["broken", "fine"]
    assert "USDT needed exceeds the cash" in rows[0].failed
    assert "400" in rows[0].failed
    printed = table(rows).splitlines()
    assert "FAILED" in printed[2]
    assert "1.50" in printed[3]
