"""The gateway's own settings: the sub-tables of `[gateway]` in configs/default.toml.

Parsed once at start with `common.config.parse_settings`, so a bad value stops the
start with one line naming its key (`config error: gateway.limits.burst: ...`).
"""

from __future__ import annotations

import ipaddress
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import PROJECT_ROOT, ConfigError, GatewaySettings, parse_settings


@dataclass(frozen=True)
class AuthSettings:
    # Off only for development on loopback: the gateway refuses to start on any
    # other address with auth off.
    enabled: bool = True
    # TOML file of hashed tokens ([[tokens]] name, sha256, scopes, expires), relative to
    # the project root; it must be readable by its owner only (mode 0600). It may not
    # exist yet, and it is read again when it changes (no restart). Add entries with
    # `python -m gateway.tokens NAME --scopes read --file configs/tokens.toml`.
    # configs/default.toml names configs/tokens.toml; empty here, so settings built in
    # code never read a developer's file.
    tokens_file: str = ""
    # More tokens, usually from EDGEQUANT_GATEWAY__AUTH__TOKENS (comma-separated):
    # "name:sha256hex:scope+scope[:expires RFC 3339]".
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorsSettings:
    # Origins the browser may call from ("http://192.168.1.20:3000"); empty: none.
    allow_origins: tuple[str, ...] = ()
    max_age_seconds: int = 600


@dataclass(frozen=True)
class LimitSettings:
    # Larger bodies get 413 before they are read whole.
    max_body_bytes: int = 1_048_576
    # Per token (per client address with auth off): a token bucket.
    rate_per_second: float = 50.0
    burst: int = 100


@dataclass(frozen=True)
class CallSettings:
    # The gRPC deadline when the request sets none (grpc-timeout header); unary RPCs.
    default_timeout_seconds: float = 30.0
    # A client's grpc-timeout is capped at this.
    max_timeout_seconds: float = 300.0
    # SSE comment lines keep idle streams (and proxies) alive.
    heartbeat_seconds: float = 15.0


@dataclass(frozen=True)
class TlsSettings:
    # HTTPS when both are set (PEM files, relative to the project root): the web UI puts
    # trade and admin tokens on laptops and phones over the LAN. `make cert` writes a
    # self-signed pair for this device to var/tls/. The key must not be readable by others.
    cert_file: str = ""
    key_file: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file and self.key_file)


@dataclass(frozen=True)
class Settings:
    auth: AuthSettings = field(default_factory=AuthSettings)
    cors: CorsSettings = field(default_factory=CorsSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    calls: CallSettings = field(default_factory=CallSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)


def settings_of(gateway: GatewaySettings) -> Settings:
    """The sub-tables, parsed and checked; raises ConfigError naming a bad key."""
    extensions: Mapping[str, Any] = gateway.extensions
    settings = Settings(
        auth=parse_settings(AuthSettings, extensions.get("auth", {}), "gateway.auth."),
        cors=parse_settings(CorsSettings, extensions.get("cors", {}), "gateway.cors."),
        limits=parse_settings(LimitSettings, extensions.get("limits", {}), "gateway.limits."),
        calls=parse_settings(CallSettings, extensions.get("calls", {}), "gateway.calls."),
        tls=parse_settings(TlsSettings, extensions.get("tls", {}), "gateway.tls."),
    )
    unknown = set(extensions) - {"auth", "cors", "limits", "calls", "tls"}
    if unknown:
        raise ConfigError(f"gateway.{sorted(unknown)[0]}", "unknown table")
    _check(gateway, settings)
    return settings


def _check(gateway: GatewaySettings, settings: Settings) -> None:
    for key, value in (
        ("gateway.limits.max_body_bytes", settings.limits.max_body_bytes),
        ("gateway.limits.rate_per_second", settings.limits.rate_per_second),
        ("gateway.limits.burst", settings.limits.burst),
        ("gateway.calls.default_timeout_seconds", settings.calls.default_timeout_seconds),
        ("gateway.calls.max_timeout_seconds", settings.calls.max_timeout_seconds),
        ("gateway.calls.heartbeat_seconds", settings.calls.heartbeat_seconds),
    ):
        if value <= 0:
            raise ConfigError(key, f"must be greater than 0, got {value}")
    for origin in settings.cors.allow_origins:
        if origin == "*":
            raise ConfigError("gateway.cors.allow_origins", "list the origins; '*' is refused")
    _check_tls(settings.tls)
    if not settings.auth.enabled and not is_loopback(gateway.host):
        raise ConfigError(
            "gateway.auth.enabled",
            f"auth is off, so the gateway binds loopback only, not {gateway.host!r}: "
            "turn auth on or set gateway.host to 127.0.0.1",
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_tls(tls: TlsSettings) -> None:
    if bool(tls.cert_file) != bool(tls.key_file):
        missing = "key_file" if tls.cert_file else "cert_file"
        raise ConfigError(f"gateway.tls.{missing}", "HTTPS needs both cert_file and key_file")
    if not tls.enabled:
        return
    for key, name in (("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        if not resolve(name).is_file():
            raise ConfigError(f"gateway.tls.{key}", f"no file {resolve(name)} (make cert)")
    key_path = resolve(tls.key_file)
    if key_path.stat().st_mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ConfigError("gateway.tls.key_file", f"{key_path} is readable by others: chmod 600")


def resolve(path: str) -> Path:
    """A configured path: as is when absolute, else under the project root."""
    resolved = Path(path)
    return resolved if resolved.is_absolute() else PROJECT_ROOT / resolved
