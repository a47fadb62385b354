"""`python -m gateway.tokens`: a new token, and an entry the gateway loads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.auth import Authenticator, load_tokens
from gateway.settings import AuthSettings
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
