"""README.md's table of HTTP routes is the one the annotations give (scripts/readme_routes.py)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from common.config import PROJECT_ROOT
from gateway.bindings import bindings_of, service_descriptors


def _script() -> ModuleType:
    path = PROJECT_ROOT / "scripts" / "readme_routes.py"
    spec = importlib.util.spec_from_file_location("readme_routes", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_lists_every_route_as_the_annotations_give_it() -> None:
    script = _script()
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert script.with_table(readme) == readme, (
        "README.md's routes table is stale: run python scripts/readme_routes.py --write"
    )
    rows = [line for line in script.table().splitlines()[2:]]
    assert len(rows) == len(bindings_of(service_descriptors())) + 1  # and /v1/whoami
    assert "| POST | `/v1/orders` | ExchangeService.SubmitOrder | trade |" in rows
    assert "| PUT | `/v1/risk/trading-state` | RiskService.SetTradingState | admin |" in rows
    assert "| GET | `/v1/whoami` | gateway: WhoAmI | read |" in rows
