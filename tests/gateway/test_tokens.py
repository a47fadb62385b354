"""`python -m gateway.tokens`: a new token, and an entry the gateway loads."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import Authenticator, load_tokens
from gateway.settings import AuthSettings
from gateway.testing import bearer
from gateway.tokens import main


def test_the_printed_entry_authenticates_the_printed_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["ui", "--scopes", "read,trade", "--days", "30"])
    output = capsys.readouterr().out
    token = output.split("token (shown once): ")[1].split()[0]
    entry = output.split("(chmod 600):\n")[1]
    assert tomllib.loads(entry)["tokens"][0]["scopes"] == ["read", "trade"]
    path = tmp_path / "tokens.toml"
    path.write_text(entry)
    path.chmod(0o600)
    authenticator = Authenticator(True, load_tokens(AuthSettings(tokens_file=str(path))))
    principal = authenticator.authenticate(f"Bearer {token}", None, "127.0.0.1", "trade")
    assert principal.name == "ui"


def test_unknown_scopes_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["ui", "--scopes", "read,root"])


def test_file_option_adds_a_private_entry_and_prints_only_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "configs" / "tokens.toml"
    main(["ui", "--scopes", "read", "--file", str(path)])
    main(["ops", "--scopes", "read,trade,admin", "--file", str(path)])
    ui_token, ops_token = capsys.readouterr().out.split()
    assert path.stat().st_mode & 0o777 == 0o600
    authenticator = Authenticator(True, load_tokens(AuthSettings(tokens_file=str(path))))
    assert authenticator.authenticate(f"Bearer {ui_token}", None, "c", "read").name == "ui"
    assert authenticator.authenticate(f"Bearer {ops_token}", None, "c", "admin").name == "ops"
    with pytest.raises(SystemExit):
        main(["ui", "--scopes", "read", "--file", str(path)])  # a name is used once
    assert len(load_tokens(AuthSettings(tokens_file=str(path)))) == 2


async def test_a_token_added_to_the_file_works_without_a_restart(
    gateway_to_recorder: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "later" / "tokens.toml"  # absent when the gateway starts
    async with gateway_to_recorder(GATEWAY__AUTH__TOKENS_FILE=str(path)) as (recorder, client):
        assert (await client.get("/v1/venues", headers=_bearer("nobody-yet"))).status_code == 401
        main(["ops", "--scopes", "read,admin", "--file", str(path)])
        token = capsys.readouterr().out.strip()
        venues = await client.get("/v1/venues", headers=_bearer(token))
        assert venues.status_code == 200, venues.text
        assert recorder.last()[2]["x-actor"] == "ops"
        # Still the environment's tokens too (gateway.testing.TOKENS).
        assert (await client.get("/v1/venues", headers=bearer("reader"))).status_code == 200

        # A broken file keeps the tokens it last held; a removed one holds none.
        path.write_text("[[tokens]\n")
        assert (await client.get("/v1/venues", headers=_bearer(token))).status_code == 200
        path.unlink()
        assert (await client.get("/v1/venues", headers=_bearer(token))).status_code == 401
        assert (await client.get("/v1/venues", headers=bearer("reader"))).status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
