"""Configuration: configs/default.toml, then a local override, then EDGEQUANT_* variables.

Layers, later wins:
1. `configs/default.toml` (committed, every key with its default);
2. the file named by `EDGEQUANT_CONFIG`, else `configs/local.toml` if it exists;
3. environment variables: `EDGEQUANT_<KEY>` for a top-level key, and
   `EDGEQUANT_<SECTION>__<KEY>` inside a section (`EDGEQUANT_RISK__ADDRESS=...`).

The result is validated against the dataclasses below; the first bad value stops the
start with one line naming its key (`config error: risk.address: ...`).

Settings are checked one way: a dataclass declares each field's bounds in its type,
`max_workers: Annotated[int, AtLeast(1)] = 2` (or the aliases `PositiveInt`,
`NonNegativeFloat`, ...), and `parse_settings` enforces them for every table it parses,
the services' own sub-tables included. A service's settings.py declares; its one
`load_settings` adds only the checks that span fields.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

from common.errors import StartupError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.toml"
LOCAL_CONFIG = PROJECT_ROOT / "configs" / "local.toml"
ENV_PREFIX = "EDGEQUANT_"
SERVICE_NAMES = ("exchange", "portfolio", "risk", "backtest", "strategy")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_Settings = TypeVar("_Settings")


@dataclass(frozen=True)
class Above:
    """The value must be greater than `bound` (`Above(0)`: a positive number)."""

    bound: float

    def problem(self, value: float) -> str | None:
        return None if value > self.bound else f"must be greater than {self.bound:g}, got {value}"


@dataclass(frozen=True)
class AtLeast:
    """The value must be `bound` or more (`AtLeast(0)`: not negative)."""

    bound: float

    def problem(self, value: float) -> str | None:
        return None if value >= self.bound else f"must be at least {self.bound:g}, got {value}"


@dataclass(frozen=True)
class AtMost:
    bound: float

    def problem(self, value: float) -> str | None:
        return None if value <= self.bound else f"must be at most {self.bound:g}, got {value}"


@dataclass(frozen=True)
class OneOf:
    """The value must be one of `choices` (text settings with a fixed vocabulary)."""

    choices: tuple[str, ...]

    def problem(self, value: str) -> str | None:
        if value in self.choices:
            return None
        return f"must be one of {', '.join(self.choices)}, got {value!r}"


@dataclass(frozen=True)
class NotEmpty:
    def problem(self, value: str) -> str | None:
        return None if value else "must not be empty"


Constraint = Above | AtLeast | AtMost | OneOf | NotEmpty

# The bounds most settings need, by name.
PositiveInt = Annotated[int, Above(0)]
PositiveFloat = Annotated[float, Above(0)]
NonNegativeInt = Annotated[int, AtLeast(0)]
NonNegativeFloat = Annotated[float, AtLeast(0)]


class ConfigError(StartupError):
    """A configuration value is missing or invalid."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config error: {key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class ServiceSettings:
    """Settings every gRPC service has."""

    # host:port on loopback, or unix:/path/to.sock.
    address: str
    # Empty means SQLite at <var_dir>/<service>.db.
    database_url: str
    # RSS budget: memmon restarts the process above it; expensive work is
    # refused above `soft_limit_ratio` of it.
    memory_budget_mib: PositiveInt
    soft_limit_ratio: Annotated[float, Above(0), AtMost(1)]
    max_concurrent_rpcs: PositiveInt
    max_message_mib: PositiveInt
    # On SIGTERM, in-flight RPCs get this long to finish.
    grace_seconds: NonNegativeFloat
    # Prometheus text at GET /metrics (common.metrics), host:port on loopback like
    # `address`; empty: off.
    metrics_address: str = ""
    # The section's sub-tables (`[exchange.paper]`), raw: each service parses its own
    # with `parse_settings` at start.
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewaySettings:
    host: Annotated[str, NotEmpty()]
    port: Annotated[int, AtLeast(0), AtMost(65535)]
    memory_budget_mib: PositiveInt
    # How long /healthz waits for each service's health check.
    health_timeout_seconds: PositiveFloat
    # The section's sub-tables (`[gateway.auth]`), raw: the gateway parses them at start.
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GrpcSettings:
    """[grpc]: the keepalive of every channel between EdgeQuant processes (the gateway's
    included) and the ping policy of every service, from one table so that they agree.

    A client pings an idle connection every `keepalive_time_seconds` and drops it when no
    answer comes within `keepalive_timeout_seconds` (a dead or hung peer is found within
    their sum). A server permits a ping every `min_ping_interval_seconds` (at most the
    keepalive time, so our own clients never offend); a client that pings more often is
    forgiven `max_ping_strikes` times, then gets GOAWAY `too_many_pings`.
    """

    # gRPC core sends a client's pings at most once a second, whatever this says.
    keepalive_time_seconds: Annotated[float, AtLeast(1)]
    keepalive_timeout_seconds: PositiveFloat
    min_ping_interval_seconds: PositiveFloat
    max_ping_strikes: NonNegativeInt


@dataclass(frozen=True)
class Config:
    # Relative paths are taken from the project root, wherever the process starts.
    var_dir: Path
    log_level: Annotated[str, OneOf(LOG_LEVELS)]
    grpc: GrpcSettings
    exchange: ServiceSettings
    portfolio: ServiceSettings
    risk: ServiceSettings
    backtest: ServiceSettings
    strategy: ServiceSettings
    gateway: GatewaySettings

    def service(self, name: str) -> ServiceSettings:
        settings = getattr(self, name)
        assert isinstance(settings, ServiceSettings), name
        return settings

    def database_url(self, name: str) -> str:
        return self.service(name).database_url or (
            f"sqlite+aiosqlite:///{self.var_dir / f'{name}.db'}"
        )

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """The validated configuration; raises ConfigError naming the first bad key."""
    environ = os.environ if environ is None else environ
    raw = _read_toml(DEFAULT_CONFIG)
    override = environ.get(f"{ENV_PREFIX}CONFIG")
    if override:
        _merge(raw, _read_toml(Path(override)))
    elif LOCAL_CONFIG.exists():
        _merge(raw, _read_toml(LOCAL_CONFIG))
    _merge(raw, _from_environment(environ))
    return _validate(raw)


def unload_toml_parser() -> None:
    """Drops tomllib, which a service uses only to read its configuration at start (~95 KiB
    of heap it would keep for nothing); a later `import tomllib` loads it afresh. Kept
    when a module other than load_config's reader holds it (then it is that module's)."""
    if not _only_imported("tomllib"):
        return
    for name in [name for name in sys.modules if name.partition(".")[0] == "tomllib"]:
        del sys.modules[name]
    # Its functions and their module namespaces are cycles: freed now, not at some later
    # full collection.
    gc.collect()


def _only_imported(name: str) -> bool:
    """Whether module `name` is loaded and nothing but sys.modules holds it."""
    module = sys.modules.get(name)
    return module is not None and all(holder is sys.modules for holder in gc.get_referrers(module))


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # noqa: PLC0415 - see unload_toml_parser

    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ConfigError(str(path), f"cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"invalid TOML: {error}") from None


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """EDGEQUANT_SECTION__KEY=value as {"section": {"key": "value"}} (values stay text)."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        path = name.removeprefix(ENV_PREFIX).lower().split("__")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _validate(raw: Mapping[str, Any]) -> Config:
    config = parse_settings(Config, raw, prefix="")
    if not config.var_dir.is_absolute():
        config = replace(config, var_dir=PROJECT_ROOT / config.var_dir)
    for name in SERVICE_NAMES:
        _check_address(f"{name}.address", config.service(name).address)
        if metrics_address := config.service(name).metrics_address:
            _check_address(f"{name}.metrics_address", metrics_address, unix=False)
    _check_grpc(config.grpc)
    return config


def parse_settings(cls: type[_Settings], raw: Mapping[str, Any], prefix: str) -> _Settings:
    """Instantiates dataclass `cls` from a TOML table, converting and checking each field.

    Fields may be str, int, float, bool, Path, tuple[str, ...] or nested dataclasses,
    each optionally `Annotated` with constraints (`AtLeast(1)`), which are enforced here;
    a field with a default may be left out. `prefix` is the table's dotted key, so errors
    name the full key. Services parse their own sub-tables (`[exchange.paper]`, found
    in `ServiceSettings.extensions`) with this at start.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix.rstrip(".") or "config", "must be a table")
    hints = get_type_hints(cls, include_extras=True)
    declared = {spec.name: spec for spec in fields(cls)}  # type: ignore[arg-type]
    extensions: dict[str, Any] = {}
    for key, value in raw.items():
        if key in declared:
            continue
        if "extensions" in declared and isinstance(value, Mapping):
            extensions[key] = value
        else:
            raise ConfigError(f"{prefix}{key}", "unknown key")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name == "extensions":
            values[name] = extensions
        elif name in raw:
            values[name] = _convert(f"{prefix}{name}", hints[name], raw[name])
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise ConfigError(f"{prefix}{name}", "missing")
    return cls(**values)


def constraints_of(kind: Any) -> tuple[Any, tuple[Constraint, ...]]:
    """A field's base type and the constraints its `Annotated` type declares."""
    if get_origin(kind) is Annotated:
        base, *extras = get_args(kind)
        return base, tuple(extra for extra in extras if isinstance(extra, Constraint))
    return kind, ()


def _convert(key: str, kind: Any, value: Any) -> Any:
    base, constraints = constraints_of(kind)
    converted = _convert_base(key, base, value)
    for constraint in constraints:
        problem = constraint.problem(converted)
        if problem is not None:
            raise ConfigError(key, problem)
    return converted


def _convert_base(key: str, kind: Any, value: Any) -> Any:  # noqa: PLR0911 - one return per type
    if is_dataclass(kind):
        return parse_settings(kind, value, prefix=f"{key}.")  # type: ignore[arg-type]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind == tuple[str, ...]:
        if isinstance(value, str):  # from the environment: comma-separated
            return tuple(item.strip() for item in value.split(",") if item.strip())
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind in (int, float, Path) and not isinstance(value, bool):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    name = getattr(kind, "__name__", str(kind))
    raise ConfigError(key, f"expected {name}, got {value!r}")


def _check_grpc(settings: GrpcSettings) -> None:
    """The one check across [grpc]'s fields; each field's own bounds are declared."""
    if settings.min_ping_interval_seconds > settings.keepalive_time_seconds:
        raise ConfigError(
            "grpc.min_ping_interval_seconds",
            "must not exceed grpc.keepalive_time_seconds: servers would send GOAWAY "
            f"too_many_pings to our own clients ({settings.min_ping_interval_seconds} > "
            f"{settings.keepalive_time_seconds})",
        )


def _check_address(key: str, address: str, unix: bool = True) -> None:
    """gRPC ports bind to loopback (or a Unix socket): only the gateway faces the LAN."""
    if unix and address.startswith("unix:"):
        if len(address) == len("unix:"):
            raise ConfigError(key, "unix: needs a socket path")
        return
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        raise ConfigError(key, f"must be a loopback host:port or unix:path, got {address!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(key, f"port must be a number 0-65535, got {address!r}")
