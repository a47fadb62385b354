"""The strategy catalog is a library both backtest and strategy import: it imports no
service, and neither service reaches into the other's modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(directory: Path) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in directory.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path.relative_to(ROOT)), node.module))
            elif isinstance(node, ast.Import):
                found.update((str(path.relative_to(ROOT)), alias.name) for alias in node.names)
    return found


def test_the_catalog_imports_no_service() -> None:
    offending = {item for item in _imports(ROOT / "strategies") if item[1].startswith("services")}
    assert offending == set()


def test_no_service_imports_another_services_modules() -> None:
    services = sorted(
        path.name for path in (ROOT / "services").iterdir() if (path / "main.py").exists()
    )
    assert {"backtest", "strategy"} <= set(services)
    offending = set()
    for name in services:
        for path, module in _imports(ROOT / "services" / name):
            parts = module.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] not in (name, "registry"):
                offending.add((path, module))
    assert offending == set()
