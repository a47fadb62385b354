"""Rows of measurements, printed as a table and written as JSON."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Row:
    section: str
    measure: str
    unit: str
    value: float
    # The same measure taken of the baseline in the same run, when there is one.
    baseline: float | None = None
    baseline_name: str = ""
    # The target from the issue or DESIGN.md, as text ("<= 64").
    target: str = ""


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def table(rows: list[Row]) -> str:
    header = ("section", "measure", "EdgeQuant", "baseline", "unit", "target")
    lines = [
        (
            row.section,
            row.measure,
            _cell(row.value),
            f"{_cell(row.baseline)} ({row.baseline_name})" if row.baseline is not None else "",
            row.unit,
            row.target,
        )
        for row in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    rendered = [
        " | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, *lines]
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(rendered)


def write_json(rows: list[Row], path: Path) -> None:
    document = {
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
        },
        "rows": [asdict(row) for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
