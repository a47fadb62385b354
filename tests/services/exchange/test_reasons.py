"""The exchange's reason registry: each reason is documented, spelled as its name, and
the only place the service's reasons come from."""

from __future__ import annotations

import re
from pathlib import Path

from common.reasons import CommonReason
from services.exchange import ccxt_errors
from services.exchange.reasons import Reason

SERVICE = Path(__file__).parents[3] / "services" / "exchange"


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
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []


def test_every_ccxt_error_maps_to_a_registered_reason() -> None:
    assert all(isinstance(reason, Reason) for _name, _error, reason in ccxt_errors.TABLE)
