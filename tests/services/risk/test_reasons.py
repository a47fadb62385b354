"""The risk reason registry: every reason risk gives comes from it, each member is given
somewhere, and the README's table names only registered reasons."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from services.risk.reasons import Reason

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ROOT / "services" / "risk"
# What carries a stable reason: an error (common.errors) and a rule's Violation.
ERRORS = {
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "Aborted",
    "ResourceExhausted",
    "PermissionDenied",
    "Unavailable",
    "DeadlineExceeded",
    "Unimplemented",
}


def modules() -> list[Path]:
    return [path for path in SERVICE.rglob("*.py") if "migrations" not in path.parts]


def given_reasons(tree: ast.AST) -> list[ast.expr]:
    """The reason expressions of every error raised and every Violation built."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id in ERRORS:
            found += [keyword.value for keyword in node.keywords if keyword.arg == "reason"]
        elif node.func.id == "Violation" and node.args:
            found.append(node.args[0])
    return found


def test_every_reason_given_is_a_registry_member() -> None:
    literal = []
    for path in modules():
        for expression in given_reasons(ast.parse(path.read_text(), str(path))):
            if isinstance(expression, ast.Constant):
                literal.append(f"{path.relative_to(ROOT)}:{expression.lineno}")
            elif (
                isinstance(expression, ast.Attribute)
                and isinstance(expression.value, ast.Name)
                and expression.value.id == "Reason"
            ):
                assert expression.attr in Reason.__members__, expression.attr
    assert literal == [], "reasons as string literals: use services.risk.reasons.Reason"


def test_every_member_is_given_somewhere() -> None:
    source = "\n".join(path.read_text() for path in modules() if path.name != "reasons.py")
    unused = [name for name in Reason.__members__ if f"Reason.{name}" not in source]
    assert unused == []


def test_the_readme_names_registered_reasons_only() -> None:
    table = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `RISK_")
    ]
    named = {name for line in table for name in re.findall(r"`([A-Z_]+)`", line)}
    assert len(named) > 20  # the table of the pre-trade rules is there
    assert named <= set(Reason.__members__), named - set(Reason.__members__)
