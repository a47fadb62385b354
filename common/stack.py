"""Runs the whole stack under supervisord in the foreground: `python -m common.stack`.

Validates the configuration first (a bad value stops here, with one line naming the
key), prepares the var directory, hands supervisord.conf the values it needs through
environment variables (including memmon's budgets, which live in configs/), prints
where everything listens, and becomes supervisord. Ctrl-C or SIGTERM stops it all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from common.config import PROJECT_ROOT, SERVICE_NAMES, Config, load_config
from common.errors import StartupError

SUPERVISORD_CONF = PROJECT_ROOT / "supervisord.conf"
PROGRAMS = (*SERVICE_NAMES, "gateway")


def memmon_arguments(config: Config) -> str:
    budgets = {name: config.service(name).memory_budget_mib for name in SERVICE_NAMES}
    budgets["gateway"] = config.gateway.memory_budget_mib
    return " ".join(f"-p {name}={mib}MB" for name, mib in budgets.items())


def supervisord_environment(config: Config) -> dict[str, str]:
    python = Path(sys.executable)
    return {
        "EDGEQUANT_VAR_DIR": str(config.var_dir.resolve()),
        "STACK_PYTHON": str(python),
        "STACK_PYTHON_BIN": str(python.parent),
        "STACK_MEMMON_ARGS": memmon_arguments(config),
    }


def describe(config: Config) -> str:
    lines = ["EdgeQuant (paper venue, offline) under supervisord:"]
    lines += [f"  {name:<10} grpc  {config.service(name).address}" for name in SERVICE_NAMES]
    lines.append(f"  {'gateway':<10} http  http://{config.gateway.host}:{config.gateway.port}")
    lines.append(f"  logs       {config.log_dir.resolve()}/")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def main() -> None:
    try:
        config = load_config()
    except StartupError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, **supervisord_environment(config)}
    print(describe(config), flush=True)
    supervisord = Path(sys.executable).parent / "supervisord"
    os.chdir(PROJECT_ROOT)
    os.execve(  # noqa: S606 - becomes supervisord, keeping the terminal
        supervisord, [str(supervisord), "-n", "-c", str(SUPERVISORD_CONF)], environment
    )


if __name__ == "__main__":
    main()
