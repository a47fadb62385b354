"""The portfolio reason registry: every reason the portfolio gives comes from it (or
from common.reasons), and each member is given somewhere."""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

from common.reasons import CommonReason
from services.portfolio.reasons import Reason

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ROOT / "services" / "portfolio"
REGISTRIES: dict[str, type[StrEnum]] = {"Reason": Reason, "CommonReason": CommonReason}


def modules() -> list[Path]:
    # testing.py is a scripted exchange: the reasons it gives are the exchange's.
    return [
        path
        for path in SERVICE.rglob("*.py")
        if "migrations" not in path.parts and path.name != "testing.py"
    ]


def test_every_reason_given_is_a_registry_member() -> None:
    wrong = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.keyword) or node.arg != "reason":
                continue
            value = node.value
            registry = (
                REGISTRIES.get(value.value.id)
                if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name)
                else None
            )
            registered = (
                registry is not None
                and isinstance(value, ast.Attribute)
                and value.attr in registry.__members__
            )
            if not registered:
                wrong.append(f"{path.relative_to(ROOT)}:{value.lineno}")
    assert wrong == [], "reasons not from services.portfolio.reasons.Reason"


def test_every_member_is_given_somewhere() -> None:
    source = "\n".join(path.read_text() for path in modules() if path.name != "reasons.py")
    assert [name for name in Reason.__members__ if f"Reason.{name}" not in source] == []
