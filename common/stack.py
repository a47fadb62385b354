"""Runs the whole stack under supervisord in the foreground: `python -m common.stack`.

Validates the configuration first (a bad value stops here, with one line naming the
key), checks that no other process listens on the stack's addresses (one line naming
each taken one), prepares the var directory, hands supervisord.conf the values it needs through
environment variables (including memmon's budgets, which live in configs/), prints
where everything listens, and becomes supervisord. Ctrl-C or SIGTERM stops it all.

supervisord says RUNNING a second after a program starts, seconds before a service
serves (migrations, feeds). So a watcher (`python -m common.stack --announce-ready`,
started just before the exec) polls the gateway's /healthz, which is 200 only when the
gateway serves and every service's grpc.health.v1 says SERVING, and then prints one
line: "EdgeQuant ready: gateway http://..., exchange 127.0.0.1:50051, ...". It exits
then, or when supervisord is gone, or after `READY_WITHIN` seconds with a line saying
what is still not serving.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

from common.config import PROJECT_ROOT, SERVICE_NAMES, Config, load_config
from common.errors import StartupError

SUPERVISORD_CONF = PROJECT_ROOT / "supervisord.conf"
PROGRAMS = (*SERVICE_NAMES, "gateway")
READY_WITHIN = 180.0
_POLL_SECONDS = 0.25


# What a ccxt venue adds to the exchange's budget unless its table says otherwise
# ([exchange.venues.<name>] memory_budget_mib): ccxt itself and the venue's markets.
CCXT_VENUE_BUDGET_MIB = 64


def exchange_budget_mib(config: Config) -> int:
    """The exchange's RSS budget: [exchange] memory_budget_mib (the paper venue's), plus
    each configured ccxt venue's memory_budget_mib."""
    exchange = config.service("exchange")
    venues = exchange.extensions.get("venues") or {}
    extra = sum(
        int(table.get("memory_budget_mib", CCXT_VENUE_BUDGET_MIB))
        for table in venues.values()
        if isinstance(table, dict)
    )
    return exchange.memory_budget_mib + extra


def memmon_arguments(config: Config) -> str:
    budgets = {name: config.service(name).memory_budget_mib for name in SERVICE_NAMES}
    budgets["exchange"] = exchange_budget_mib(config)
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
    scheme = _gateway_scheme(config)
    lines.append(
        f"  {'gateway':<10} {scheme:<5} {scheme}://{config.gateway.host}:{config.gateway.port}"
    )
    lines.append(f"  logs       {config.log_dir.resolve()}/")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def gateway_url(config: Config) -> str:
    """Where this machine reaches the gateway (a wildcard host is reached on loopback)."""
    host = config.gateway.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - reading the setting, not binding
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{_gateway_scheme(config)}://{host}:{config.gateway.port}"


def _gateway_scheme(config: Config) -> str:
    """https when [gateway.tls] names a certificate and key (gateway/settings.py)."""
    tls = config.gateway.extensions.get("tls", {})
    return "https" if tls.get("cert_file") and tls.get("key_file") else "http"


def ready_line(config: Config) -> str:
    services = ", ".join(f"{name} {config.service(name).address}" for name in SERVICE_NAMES)
    return f"EdgeQuant ready: gateway {gateway_url(config)}, {services}"


# The readiness probe of our own gateway on this machine sends no token and reads only
# /healthz: whichever certificate the gateway was given (self-signed by `make cert`, or a
# CA's for another name) must not keep the stack from saying it is ready. (Nor are the
# system's CAs loaded: ~1 MiB.) Made on first use: even without CAs a context is ~0.3 MiB
# of OpenSSL's heap, and the exchange imports this module for exchange_budget_mib.
@cache
def _own_gateway() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def healthz(url: str) -> tuple[bool, str]:
    """(every process serves, what /healthz said or why it did not answer)."""
    # Here, not at the top: urllib.request brings http.client and email (~0.3 MiB) into
    # the exchange, which imports this module for exchange_budget_mib.
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(  # noqa: S310
            f"{url}/healthz", timeout=2, context=_own_gateway() if url.startswith("https") else None
        ) as response:
            return True, response.read().decode()
    except urllib.error.HTTPError as error:  # 503: a service is not SERVING
        return False, error.read().decode(errors="replace")
    except (OSError, ValueError) as error:
        return False, f"gateway: {error}"


def announce_ready(config: Config, supervisord_pid: int, within: float = READY_WITHIN) -> int:
    """Prints the ready line once everything serves; 0 if it did, 1 if it gave up."""
    url = gateway_url(config)
    started = time.monotonic()
    answer = ""
    while time.monotonic() - started < within:
        if os.getppid() != supervisord_pid:
            return 1  # the stack stopped before it was ready: nothing to announce
        ready, answer = healthz(url)
        if ready:
            elapsed = time.monotonic() - started
            print(f"{ready_line(config)} ({elapsed:.1f} s)", flush=True)
            return 0
        time.sleep(_POLL_SECONDS)
    print(
        f"EdgeQuant not ready after {within:.0f} s: {_not_serving(answer)}; "
        f"see {config.log_dir.resolve()}/",
        flush=True,
    )
    return 1


def _not_serving(answer: str) -> str:
    try:
        services = json.loads(answer)["services"]
    except (ValueError, KeyError, TypeError):
        return answer
    waiting = [f"{name} {status}" for name, status in services.items() if status != "SERVING"]
    return ", ".join(waiting) or answer


def addresses(config: Config) -> dict[str, tuple[str, int]]:
    """Each program's TCP listening address (Unix sockets and port 0 left out)."""
    found = {"gateway": (config.gateway.host, config.gateway.port)}
    for name in SERVICE_NAMES:
        address = config.service(name).address
        if not address.startswith("unix:"):
            host, _, port = address.rpartition(":")
            found[name] = (host.strip("[]"), int(port))
    return {name: (host, port) for name, (host, port) in found.items() if port}


def taken(config: Config) -> list[str]:
    """The programs whose address another process listens on. Checked before supervisord
    starts: it would restart such a program for ever, and the ready line would be read
    from whatever answers on the gateway's port."""
    busy = []
    for name, (host, port) in addresses(config).items():
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the servers bind: a port left in TIME_WAIT by our last stop is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(f"{name} cannot listen on {host}:{port}: the address is in use")
    return busy


def _start_announcer(environment: dict[str, str]) -> None:
    """The watcher, a child that outlives the exec: supervisord's pid is ours."""
    subprocess.Popen(
        [sys.executable, "-m", "common.stack", "--announce-ready", str(os.getpid())],
        env=environment,
        stdin=subprocess.DEVNULL,
    )


def main() -> None:
    try:
        config = load_config()
    except StartupError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    if sys.argv[1:2] == ["--announce-ready"]:
        # Ctrl-C reaches the whole foreground group: leave quietly, supervisord stops.
        signal.signal(signal.SIGINT, lambda *_: sys.exit(1))
        sys.exit(announce_ready(config, int(sys.argv[2])))
    busy = taken(config)
    if busy:
        print(
            "; ".join(busy) + " (another EdgeQuant running? stop it, or set other ports in "
            "configs/local.toml)",
            file=sys.stderr,
        )
        sys.exit(2)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, **supervisord_environment(config)}
    print(describe(config), flush=True)
    _start_announcer(environment)
    supervisord = Path(sys.executable).parent / "supervisord"
    os.chdir(PROJECT_ROOT)
    os.execve(  # noqa: S606 - becomes supervisord, keeping the terminal
        supervisord, [str(supervisord), "-n", "-c", str(SUPERVISORD_CONF)], environment
    )


if __name__ == "__main__":
    main()
