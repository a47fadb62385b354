"""The two install sets: `make run` installs requirements-runtime.lock as is (--no-deps),
`make test` the full requirements.lock. The runtime set must hold everything the stack
imports (with the tick engine and ccxt), at the full lock's versions, and none of the
dev tools or the bench's peers."""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from common.config import PROJECT_ROOT

# hftbacktest declares its reports' dependencies (plots, dataframes) as requirements; its
# engine and Binance converter import none of them, so the runtime set leaves them out.
NOT_FOR_THE_TICK_ENGINE = {"holoviews", "matplotlib", "polars"}
DEV_ONLY = {"pytest", "mypy", "ruff", "grpcio-tools", "playwright", "vectorbt", "backtesting"}


def _pins(name: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (PROJECT_ROOT / name).read_text().splitlines():
        if line and not line.startswith("#"):
            package, _, version = line.partition("==")
            pins[canonicalize_name(package)] = version
    return pins


def _project() -> dict[str, list[str]]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return {"": project["dependencies"], **project["optional-dependencies"]}


def test_the_runtime_lock_pins_the_full_locks_versions() -> None:
    full = _pins("requirements.lock")
    runtime = _pins("requirements-runtime.lock")
    assert {name: full.get(name) for name in runtime} == runtime


def test_the_runtime_lock_holds_the_stack_the_tick_engine_and_ccxt_not_the_dev_set() -> None:
    runtime = _pins("requirements-runtime.lock")
    groups = _project()
    wanted = {canonicalize_name(Requirement(r).name) for r in groups[""] + groups["ccxt"]}
    wanted |= {canonicalize_name(Requirement(r).name) for r in groups["tick"]}
    assert wanted - runtime.keys() == set()
    assert DEV_ONLY & runtime.keys() == set()


def test_the_runtime_lock_is_closed_under_its_packages_requirements() -> None:
    # Installed with --no-deps: a requirement missing from the lock would be missing on
    # the device. Read from this venv (the full set, a superset of the runtime one).
    runtime = _pins("requirements-runtime.lock")
    missing = set()
    for name in runtime:
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            needed = canonicalize_name(requirement.name)
            if needed not in runtime and not (
                name == "hftbacktest" and needed in NOT_FOR_THE_TICK_ENGINE
            ):
                missing.add(f"{name} -> {needed}")
    assert missing == set()
