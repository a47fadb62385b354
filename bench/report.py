"""Rows of measurements: printed as a table, written as JSON and as a markdown table, and
the markdown put into the README between its bench markers."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
HEADER = ("section", "measure", "EdgeQuant", "baseline", "unit", "target")


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
    # Why the section could not complete; such a row holds no measure.
    failed: str = ""


def failed_row(section: str, reason: str) -> Row:
    """The one row of a section that could not complete: the table marks it FAILED."""
    return Row(section, "section did not complete", "", 0.0, failed=reason)


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1-99) of `values`, interpolated within the sample's range."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def machine() -> dict[str, Any]:
    """What the figures were taken on; the load average says how shared it was."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _cells(row: Row) -> tuple[str, ...]:
    if row.failed:
        # The table keeps to one line a row; the full reason is printed beside the table.
        short = row.failed if len(row.failed) <= 160 else row.failed[:157] + "..."
        return (row.section, f"{row.measure}: {short}", "FAILED", "", row.unit, row.target)
    baseline = f"{_cell(row.baseline)} ({row.baseline_name})" if row.baseline is not None else ""
    return (row.section, row.measure, _cell(row.value), baseline, row.unit, row.target)


def table(rows: list[Row]) -> str:
    lines = [HEADER, *map(_cells, rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    rendered = [
        " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(rendered)


def markdown(rows: list[Row], taken_at: str, on: dict[str, Any]) -> str:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    caption = (
        f"Taken {taken_at} on {on['machine']}, {on['cpus']} CPUs, Python {on['python']} "
        f"({on['platform']}); load average before the run "
        f"{', '.join(map(str, on['load_average']))}."
    )
    body = [line(HEADER), "|" + "---|" * len(HEADER), *(line(_cells(row)) for row in rows)]
    return "\n".join([caption, "", *body]) + "\n"


def write(rows: list[Row], on: dict[str, Any], json_path: Path, markdown_path: Path) -> str:
    """Writes the JSON and the markdown table; returns the markdown."""
    taken_at = datetime.now(UTC).isoformat(timespec="seconds")
    document = {"taken_at": taken_at, "machine": on, "rows": [asdict(row) for row in rows]}
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    text = markdown(rows, taken_at, on)
    markdown_path.write_text(text)
    return text


def update_readme(readme: Path, text: str) -> bool:
    """Puts `text` between the README's bench markers; False when it has none."""
    content = readme.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(content):
        return False
    replacement = f"{README_START}\n{text}{README_END}"
    readme.write_text(pattern.sub(lambda _match: replacement, content))
    return True
