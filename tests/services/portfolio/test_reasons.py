"""The portfolio's reason registry: each reason spelled as its name, documented, and given."""

from __future__ import annotations

from pathlib import Path

from common.testing import reason_registry_problems
from services.portfolio.reasons import Reason

SERVICE = Path(__file__).resolve().parents[3] / "services" / "portfolio"


def test_the_registry_is_complete_and_documented() -> None:
    assert reason_registry_problems(Reason, SERVICE) == []
