"""deploy/edgequant.service: a unit systemd accepts, whose MemoryMax holds every budget
in configs/ (the five processes and the backtest workers at their most)."""

from __future__ import annotations

import configparser
import getpass
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import PROJECT_ROOT, SERVICE_NAMES, load_config, parse_settings
from services.backtest.settings import BacktestSettings

UNIT = PROJECT_ROOT / "deploy" / "edgequant.service"
INSTALL_DIR = "/opt/edgequant"
_UNITS = {"K": 1, "M": 1024, "G": 1024 * 1024, "T": 1024 * 1024 * 1024}


def _service_section() -> configparser.SectionProxy:
    # strict=False: a unit may repeat a key (Environment=), which systemd accumulates.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def _mib(value: str) -> float:
    """A systemd memory size ("2560M", "2G", bytes without a suffix) in MiB."""
    suffix = value[-1].upper()
    if suffix in _UNITS:
        return float(value[:-1]) * _UNITS[suffix] / 1024
    return int(value) / (1024 * 1024)


def configured_budgets_mib() -> int:
    """Every RSS budget in configs/: the four services, the gateway, and the backtest
    workers that may run at once."""
    config = load_config({})
    budgets = sum(config.service(name).memory_budget_mib for name in SERVICE_NAMES)
    budgets += config.gateway.memory_budget_mib
    jobs = parse_settings(BacktestSettings, config.backtest.extensions, "backtest.").jobs
    return budgets + jobs.max_workers * jobs.worker_budget_mib


def test_memory_max_holds_every_configured_budget() -> None:
    service = _service_section()
    memory_max = _mib(service["MemoryMax"])
    assert memory_max >= configured_budgets_mib(), (memory_max, configured_budgets_mib())
    assert _mib(service["MemoryHigh"]) < memory_max


def test_the_unit_runs_the_stack_as_make_run_does_hardened() -> None:
    service = _service_section()
    assert service["ExecStart"] == f"{INSTALL_DIR}/.venv/bin/python -m common.stack"
    assert service["WorkingDirectory"] == INSTALL_DIR
    assert service["Restart"] == "on-failure"
    assert service["User"] != "root"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    # The one place the stack writes: the default var_dir.
    assert service["ReadWritePaths"] == f"{INSTALL_DIR}/{load_config({}).var_dir.name}"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (systemd's own tool; Debian: systemd)")
    # The unit as installed in this checkout, run by this user: verify checks that the
    # executable and the user exist.
    text = UNIT.read_text().replace(f"{INSTALL_DIR}/.venv/bin/python", sys.executable)
    text = text.replace(INSTALL_DIR, str(PROJECT_ROOT))
    text = text.replace("User=edgequant", f"User={getpass.getuser()}")
    text = text.replace("Group=edgequant\n", "")
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if unit.name in line or "edgequant" in line.lower()
    ]
    assert result.returncode == 0, result.stdout + result.stderr
    assert not problems, problems
