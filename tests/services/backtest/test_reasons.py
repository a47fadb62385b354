"""The backtest's reason registry: each reason is documented, spelled as its name, and
the only place the service's reasons come from."""

from __future__ import annotations

import re
from pathlib import Path

from common.reasons import CommonReason
from services.backtest.reasons import Reason

SERVICE = Path(__file__).parents[3] / "services" / "backtest"


def test_each_reason_is_its_own_name_and_has_a_comment() -> None:
    source = (SERVICE / "reasons.py").read_text().splitlines()
    for reason in Reason:
        assert reason.value == reason.name
        line = next(
            n for n, text in enumerate(source) if text.strip().startswith(f"{reason.name} =")
        )
        assert source[line - 1].strip().startswith("#"), f"{reason.name} has no comment"
    assert not set(Reason) & set(CommonReason)


def test_no_reason_is_a_string_literal_in_the_service() -> None:
    literal = re.compile(r"""reason\s*=\s*f?["']|\breason\s*=\s*["'][A-Z_]+["']""")
    offenders = [
        f"{path.relative_to(SERVICE)}:{number}"
        for path in SERVICE.rglob("*.py")
        # jobs/ moves to the registry with the job manager's split (its own branch).
        if "jobs" not in path.relative_to(SERVICE).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []
