"""Bearer tokens with scopes: who is calling, and may they call this RPC.

Tokens are kept only as SHA-256 digests (a 0600 TOML file and/or the environment); a
presented token is hashed and compared with every digest in constant time. Each token
has a name (passed to the services as `x-actor`, so risk records who halted trading),
a set of scopes and an optional expiry.

Scopes are explicit, not a hierarchy (an admin token that should trade lists both):
- read:  RPCs that change nothing: every GET binding, and RPCs named as queries
         (Compute..., Run... : ComputeVaR, RunStressTest);
- trade: the other RPCs of ExchangeService (SubmitOrder, CancelOrder, CancelAllOrders),
         and RiskService.CheckOrder: a real check counts in the account's order-rate
         windows, reserves exposure and may publish a denial, so a read token must not
         spend a trader's budget (the order ticket's pre-check sends `dry_run`);
- admin: every other RPC that changes state (UpdateLimits, SetTradingState,
         ImportDataset, DeleteDataset, SubmitBacktest, CancelJob, ImportFills).
A new RPC gets its scope by the same rule, without gateway code.

The tokens file is read again when it changes (its mtime, size or inode; checked on each
request that needs a token, one stat), so a token added with `python -m gateway.tokens
NAME --file configs/tokens.toml` works on the next request, without a restart. A file
that no longer loads (bad TOML, readable by others) is logged and the tokens it last
held stay in force; a file that is removed holds no tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from common.config import ConfigError
from gateway.bindings import Binding
from gateway.errors import GatewayError
from gateway.reasons import Reason
from gateway.settings import AuthSettings, resolve

log = logging.getLogger("edgequant.gateway.auth")

READ, TRADE, ADMIN = "read", "trade", "admin"
SCOPES = (READ, TRADE, ADMIN)
_QUERY_VERBS = ("Get", "List", "Stream", "Compute", "Run")
_TRADING_SERVICE = "exchange"
# Outside ExchangeService, the RPCs that act on a trading budget (see the docstring).
_TRADING_RPCS = frozenset({"edgequant.risk.v1.RiskService.CheckOrder"})


def required_scope(binding: Binding) -> str:
    """The scope a binding's RPC needs (the rule in the module docstring)."""
    name = str(binding.rpc.method.name)
    if binding.http_method == "GET" or name.startswith(_QUERY_VERBS):
        return READ
    if binding.rpc.service == _TRADING_SERVICE or binding.rpc.full_name in _TRADING_RPCS:
        return TRADE
    return ADMIN


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes
    scopes: frozenset[str]
    expires: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a token's name, or the client address with auth off."""

    name: str
    rate_key: str
    # What the token may do and until when (auth off: every scope, no expiry).
    scopes: frozenset[str] = frozenset(SCOPES)
    expires: datetime | None = None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The configured tokens: the `tokens` entries, and the file's, re-read on change."""

    def __init__(self, settings: AuthSettings) -> None:
        """Raises ConfigError (a bad entry or file stops the start)."""
        self._entries = [_from_entry(entry) for entry in settings.tokens]
        self._path = resolve(settings.tokens_file) if settings.tokens_file else None
        self._stamp = _stamp(self._path) if self._path else None
        self._tokens = self._load()
        if settings.enabled and not self._tokens:
            # Safe as it is (every RPC answers 401), so the stack still starts; say why.
            where = f" --file {settings.tokens_file}" if settings.tokens_file else ""
            log.warning(
                "auth is on but no token is configured: every RPC answers 401; make one with "
                f"`.venv/bin/python -m gateway.tokens NAME --scopes read,trade{where}`"
            )

    def tokens(self) -> tuple[Token, ...]:
        """The tokens in force, after re-reading the file if it changed."""
        if self._path is not None:
            stamp = _stamp(self._path)
            if stamp != self._stamp:
                self._stamp = stamp
                self._reload()
        return self._tokens

    def _reload(self) -> None:
        try:
            self._tokens = self._load()
        except ConfigError as error:
            log.error("tokens file not reloaded, the previous tokens stay: %s", error)
            return
        log.info("tokens file reloaded", extra={"tokens": len(self._tokens)})

    def _load(self) -> tuple[Token, ...]:
        tokens = list(self._entries)
        if self._path is not None and self._stamp is not None:
            tokens += _from_file(self._path)
        names = [token.name for token in tokens]
        duplicate = next((name for name in names if names.count(name) > 1), None)
        if duplicate:
            raise ConfigError("gateway.auth", f"token name {duplicate!r} appears twice")
        return tuple(tokens)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is written or replaced; None when there is none."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    except OSError:
        return (-1, -1, -1)  # unreadable: the reload fails, is logged, and tokens stay
    return (status.st_mtime_ns, status.st_size, status.st_ino)


class Authenticator:
    def __init__(self, enabled: bool, tokens: Sequence[Token] | TokenStore) -> None:
        self.enabled = enabled
        self._store = tokens if isinstance(tokens, TokenStore) else None
        self._tokens = tuple(tokens) if not isinstance(tokens, TokenStore) else ()

    def authenticate(
        self, authorization: str | None, query_token: str | None, client: str, scope: str
    ) -> Principal:
        """The principal of a request needing `scope`; raises 401 or 403 as a GatewayError."""
        if not self.enabled:
            return Principal(name="anonymous", rate_key=f"client:{client}")
        presented = _bearer(authorization) if authorization else query_token
        if not presented:
            raise _unauthenticated(Reason.MISSING_TOKEN, "a bearer token is required")
        token = self._find(presented)
        if token is None:
            raise _unauthenticated(Reason.INVALID_TOKEN, "the bearer token is not valid")
        if token.expires is not None and token.expires <= datetime.now(UTC):
            raise _unauthenticated(Reason.TOKEN_EXPIRED, f"token {token.name!r} has expired")
        if scope not in token.scopes:
            raise GatewayError(
                grpc.StatusCode.PERMISSION_DENIED,
                Reason.INSUFFICIENT_SCOPE,
                f"token {token.name!r} lacks the {scope!r} scope this call needs",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return Principal(
            name=token.name,
            rate_key=f"token:{token.name}",
            scopes=token.scopes,
            expires=token.expires,
        )

    def _find(self, presented: str) -> Token | None:
        """Compares with every digest (no early exit), so timing says nothing."""
        candidate = hashlib.sha256(presented.encode()).digest()
        found = None
        tokens = self._store.tokens() if self._store is not None else self._tokens
        for token in tokens:
            if hmac.compare_digest(candidate, token.digest):
                found = token
        return found


def _bearer(authorization: str) -> str | None:
    kind, _, value = authorization.partition(" ")
    if kind.lower() != "bearer":
        return None
    return value.strip() or None


def _unauthenticated(reason: Reason, message: str) -> GatewayError:
    challenge = 'Bearer realm="edgequant"'
    if reason != Reason.MISSING_TOKEN:
        challenge += ', error="invalid_token"'
    return GatewayError(
        grpc.StatusCode.UNAUTHENTICATED, reason, message, headers={"WWW-Authenticate": challenge}
    )


def load_tokens(settings: AuthSettings) -> list[Token]:
    """Tokens from the secrets file and the `tokens` setting; raises ConfigError."""
    return list(TokenStore(settings).tokens())


def _from_entry(entry: str) -> Token:
    key = "gateway.auth.tokens"
    parts = entry.split(":", 3)
    if len(parts) < 3:
        raise ConfigError(key, "each entry is name:sha256hex:scope+scope[:expires]")
    name, hexdigest, scopes = parts[:3]
    expires = parts[3] if len(parts) == 4 else None
    return _token(key, name, hexdigest, scopes.split("+"), expires)


def _from_file(path: Path) -> list[Token]:
    key = "gateway.auth.tokens_file"
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(key, f"{path} is readable by others: chmod 600 {path}")
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise ConfigError(key, f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(key, f"{path}: invalid TOML: {error}") from None
    entries = document.get("tokens", [])
    if not isinstance(entries, list):
        raise ConfigError(key, f"{path}: [[tokens]] must be an array of tables")
    return [
        _token(
            f"{key} ({path})",
            str(entry.get("name", "")),
            str(entry.get("sha256", "")),
            entry.get("scopes", []),
            entry.get("expires"),
        )
        for entry in entries
    ]


def _token(key: str, name: str, hexdigest: str, scopes: Iterable[Any], expires: Any) -> Token:
    if not name:
        raise ConfigError(key, "a token needs a name")
    try:
        raw = bytes.fromhex(hexdigest)
    except ValueError:
        raw = b""
    if len(raw) != hashlib.sha256().digest_size:
        raise ConfigError(key, f"token {name!r}: sha256 must be 64 hex digits")
    scope_set = frozenset(str(scope) for scope in scopes)
    if not scope_set or not scope_set <= set(SCOPES):
        raise ConfigError(key, f"token {name!r}: scopes must be among {', '.join(SCOPES)}")
    return Token(name=name, digest=raw, scopes=scope_set, expires=_expiry(key, name, expires))


def _expiry(key: str, name: str, value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(key, f"token {name!r}: expires must be RFC 3339") from None
    if moment.tzinfo is None:
        raise ConfigError(key, f"token {name!r}: expires needs a time zone (Z)")
    return moment
