"""The bench report: one row per measure in the printed table, the markdown table with
the machine it was taken on, and the README's table replaced between its markers."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import README_END, README_START, Row, machine, table, update_readme, write

ROWS = [
    Row("risk", "CheckOrder throughput", "calls/s", 1735.1, 2073.2, "bare grpc.aio", ">= 1,659"),
    Row("stack", "exchange: idle RSS | paper", "MiB", 66.0),
]


def test_the_printed_table_has_a_line_per_row_under_its_header() -> None:
    lines = table(ROWS).splitlines()

    assert lines[0].split(" | ")[0].strip() == "section"
    assert len(lines) == 2 + len(ROWS)
    assert "1,735.10" in lines[2]
    assert "2,073.20 (bare grpc.aio)" in lines[2]


def test_json_and_markdown_name_the_machine_and_hold_every_row(tmp_path: Path) -> None:
    text = write(ROWS, machine(), tmp_path / "results.json", tmp_path / "results.md")

    document = json.loads((tmp_path / "results.json").read_text())
    assert [row["measure"] for row in document["rows"]] == [row.measure for row in ROWS]
    assert document["machine"]["cpus"] >= 1
    assert (tmp_path / "results.md").read_text() == text
    assert text.startswith("Taken ")
    assert "| risk | CheckOrder throughput | 1,735.10 |" in text
    # A "|" inside a cell must not split the markdown row.
    assert "exchange: idle RSS \\| paper" in text


def test_the_readme_table_is_replaced_between_the_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\nAfter.\n")

    assert update_readme(readme, "new table\n")

    assert readme.read_text() == f"# Title\n\n{README_START}\nnew table\n{README_END}\n\nAfter.\n"


def test_a_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")

    assert not update_readme(readme, "table\n")
    assert readme.read_text() == "# Title\n"
