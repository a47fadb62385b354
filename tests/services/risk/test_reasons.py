"""The risk reason registry: each reason spelled as its name, documented, and given; the
README's table of pre-trade rules names only registered reasons."""

from __future__ import annotations

import re
from pathlib import Path

from common.testing import reason_registry_problems
from services.risk.reasons import Reason

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ROOT / "services" / "risk"


def test_the_registry_is_complete_and_documented() -> None:
    assert reason_registry_problems(Reason, SERVICE) == []


def test_the_readme_names_registered_reasons_only() -> None:
    table = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `RISK_")
    ]
    named = {name for line in table for name in re.findall(r"`([A-Z_]+)`", line)}
    assert len(named) > 20  # the table of the pre-trade rules is there
    assert named <= set(Reason.__members__), named - set(Reason.__members__)
