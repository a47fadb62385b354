"""A ccxt venue's credentials: from a 0600 secrets file and/or environment variables,
checked against what the exchange requires (ccxt's `requiredCredentials`). Values are
never logged and never put in an error message."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable
from pathlib import Path

from common.config import ConfigError
from services.exchange.settings import CcxtVenueSettings

# ccxt's credential attribute -> its name in settings (`<name>_env`) and secrets files.
CREDENTIALS = {
    "apiKey": "api_key",
    "secret": "secret",
    "password": "password",
    "uid": "uid",
    "login": "login",
    "twofa": "twofa",
    "privateKey": "private_key",
    "walletAddress": "wallet_address",
    "token": "token",
}


def load_keys(
    name: str, settings: CcxtVenueSettings, required: Iterable[str] = ("apiKey", "secret")
) -> dict[str, str]:
    """The credentials ccxt needs, from the 0600 secrets file and/or the environment.

    Every credential in `required` must be present: a missing one stops the start with
    one line naming the venue and the credential."""
    prefix = f"exchange.venues.{name}."
    found: dict[str, str] = {}
    if settings.secrets_file:
        path = Path(settings.secrets_file)
        try:
            mode = path.stat().st_mode
        except OSError as error:
            raise ConfigError(f"{prefix}secrets_file", f"cannot read: {error.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{prefix}secrets_file", f"{path} is readable by others: chmod 600 {path}"
            )
        with path.open("rb") as file:
            table = tomllib.load(file)
        if "passphrase" in table and "password" not in table:  # OKX's and KuCoin's word
            table["password"] = table["passphrase"]
        for ccxt_name, snake in CREDENTIALS.items():
            if table.get(snake):
                found[ccxt_name] = str(table[snake])
    for ccxt_name, snake in CREDENTIALS.items():
        env = settings.credential_env(snake)
        if env:
            value = os.environ.get(env)
            if not value:
                raise ConfigError(f"{prefix}{snake}_env", f"${env} is not set")
            found[ccxt_name] = value
    for ccxt_name in required:
        if ccxt_name not in found:
            snake = CREDENTIALS.get(ccxt_name, ccxt_name)
            raise ConfigError(
                prefix.rstrip("."),
                f"{settings.exchange_id} requires the credential {snake!r}: set {snake}_env "
                f"or {snake} in secrets_file (or trading = false for market data only)",
            )
    return found
