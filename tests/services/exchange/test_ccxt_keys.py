"""A ccxt venue's keys: from a private secrets file and/or the environment, every one the
exchange requires, and never a value in an error message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.config import ConfigError
from services.exchange.ccxt_keys import load_keys
from services.exchange.settings import CcxtVenueSettings

SECRET = "s3cr3t-never-shown"  # noqa: S105 - a test value, to look for in the output
PASSPHRASE = "pa55-never-shown"  # noqa: S105 - a test value
OKX_REQUIRES = ("apiKey", "secret", "password")


def _secrets(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "okx.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_secrets_file_holds_every_credential_and_must_be_private(tmp_path: Path) -> None:
    text = f'api_key = "k"\nsecret = "{SECRET}"\npassphrase = "{PASSPHRASE}"\n'
    secrets = _secrets(tmp_path, text, 0o644)
    settings = CcxtVenueSettings(exchange_id="okx", secrets_file=str(secrets))

    with pytest.raises(ConfigError) as raised:
        load_keys("okx", settings, OKX_REQUIRES)
    assert "chmod 600" in str(raised.value)
    assert SECRET not in str(raised.value)

    os.chmod(secrets, 0o600)
    assert load_keys("okx", settings, OKX_REQUIRES) == {
        "apiKey": "k",
        "secret": SECRET,
        "password": PASSPHRASE,  # OKX's word for ccxt's password
    }


def test_the_environment_fills_in_and_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = _secrets(tmp_path, 'api_key = "from-file"\nsecret = "file-secret"\n')
    monkeypatch.setenv("EQ_TEST_KEY", "from-env")
    monkeypatch.setenv("EQ_TEST_PASSWORD", PASSPHRASE)
    settings = CcxtVenueSettings(
        exchange_id="okx",
        secrets_file=str(secrets),
        api_key_env="EQ_TEST_KEY",
        password_env="EQ_TEST_PASSWORD",  # noqa: S106 - a variable's name
    )

    assert load_keys("okx", settings, OKX_REQUIRES) == {
        "apiKey": "from-env",
        "secret": "file-secret",
        "password": PASSPHRASE,
    }


def test_a_named_variable_that_is_not_set_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQ_TEST_UNSET", raising=False)
    settings = CcxtVenueSettings(exchange_id="binance", api_key_env="EQ_TEST_UNSET")

    with pytest.raises(ConfigError) as raised:
        load_keys("main", settings)

    assert "exchange.venues.main.api_key_env" in str(raised.value)
    assert "$EQ_TEST_UNSET is not set" in str(raised.value)


def test_a_missing_required_credential_is_named_without_the_others_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EQ_TEST_KEY", "k")
    monkeypatch.setenv("EQ_TEST_SECRET", SECRET)
    settings = CcxtVenueSettings(
        exchange_id="okx",
        api_key_env="EQ_TEST_KEY",
        secret_env="EQ_TEST_SECRET",  # noqa: S106 - a variable's name
    )

    with pytest.raises(ConfigError) as raised:
        load_keys("okx-main", settings, OKX_REQUIRES)

    message = str(raised.value)
    assert "okx requires the credential 'password'" in message
    assert SECRET not in message


def test_an_unreadable_secrets_file_is_refused(tmp_path: Path) -> None:
    settings = CcxtVenueSettings(exchange_id="okx", secrets_file=str(tmp_path / "absent.toml"))

    with pytest.raises(ConfigError) as raised:
        load_keys("okx", settings, OKX_REQUIRES)

    assert "exchange.venues.okx.secrets_file" in str(raised.value)
    assert "cannot read" in str(raised.value)
