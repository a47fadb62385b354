"""Runs bench sections one after the other, a failure recorded with its reason and the
rest still run; and the last soak's counts as rows of the bench table."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.report import Row, failed_row
from bench.section import reason

Section = Callable[[], Awaitable[list[Row]]]


async def run_sections(
    sections: dict[str, Section],
) -> tuple[list[Row], list[str]]:
    """Every section's rows, a failed one as its FAILED row; and the failed sections' names."""
    rows: list[Row] = []
    failed: list[str] = []
    for name, section in sections.items():
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            rows += await section()
        except Exception as error:
            why = reason(error)
            traceback.print_exc()
            print(f"[bench] {name} FAILED: {why}", file=sys.stderr, flush=True)
            rows.append(failed_row(name, why))
            failed.append(name)
        else:
            print(f"[bench] {name} done in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    return rows, failed


def soak_rows(path: Path) -> list[Row]:
    """The last `make soak`'s error and stream-cut counts (target 0), when one was run."""
    if not path.exists():
        return []
    document = json.loads(path.read_text())
    if "errors" not in document:  # written before the soak counted them
        return []
    section = f"soak ({document['seconds']} s, {document.get('taken_at', '')})"
    return [
        Row(section, "errors a healthy stack does not give", "count", document["errors"],
            target="0"),
        Row(section, "streams cut unasked", "count", document["stream_cuts"], target="0"),
        Row(section, "crossed paper book samples", "count", document["crossed_books"],
            target="0"),
    ]  # fmt: skip
