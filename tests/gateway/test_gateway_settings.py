"""The gateway's sub-tables: parsed at start, a bad value stops it naming the key;
auth off is refused anywhere but loopback."""

from __future__ import annotations

import pytest

from common.config import ConfigError, load_config
from gateway.settings import is_loopback, settings_of


def test_defaults_are_safe(environment: dict[str, str]) -> None:
    settings = settings_of(load_config(environment).gateway)
    assert settings.auth.enabled
    assert settings.cors.allow_origins == ()
    assert settings.limits.max_body_bytes == 1_048_576


def test_environment_overrides_reach_the_sub_tables(environment: dict[str, str]) -> None:
    config = load_config(
        {
            **environment,
            "EDGEQUANT_GATEWAY__CORS__ALLOW_ORIGINS": "http://a.test,http://b.test",
            "EDGEQUANT_GATEWAY__LIMITS__BURST": "7",
        }
    )
    settings = settings_of(config.gateway)
    assert settings.cors.allow_origins == ("http://a.test", "http://b.test")
    assert settings.limits.burst == 7


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("LIMITS__BURST", "0", "gateway.limits.burst"),
        ("LIMITS__RATE_PER_SECOND", "fast", "gateway.limits.rate_per_second"),
        ("CORS__ALLOW_ORIGINS", "*", "gateway.cors.allow_origins"),
        ("AUTH__COLOUR", "red", "gateway.auth.colour"),
    ],
)
def test_a_bad_value_names_its_key(
    environment: dict[str, str], key: str, value: str, named: str
) -> None:
    config = load_config({**environment, f"EDGEQUANT_GATEWAY__{key}": value})
    with pytest.raises(ConfigError) as raised:
        settings_of(config.gateway)
    assert raised.value.key == named


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_auth_off_refuses_a_non_loopback_address(environment: dict[str, str], host: str) -> None:
    config = load_config(
        {
            **environment,
            "EDGEQUANT_GATEWAY__HOST": host,
            "EDGEQUANT_GATEWAY__AUTH__ENABLED": "false",
        }
    )
    with pytest.raises(ConfigError, match="auth is off") as raised:
        settings_of(config.gateway)
    assert raised.value.key == "gateway.auth.enabled"


def test_auth_off_on_loopback_is_allowed(environment: dict[str, str]) -> None:
    config = load_config({**environment, "EDGEQUANT_GATEWAY__AUTH__ENABLED": "false"})
    assert not settings_of(config.gateway).auth.enabled


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True), ("0.0.0.0", False)],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
