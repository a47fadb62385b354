"""`python -m gateway.tokens NAME --scopes read,trade [--days 90] [--file PATH]`: a new
bearer token.

Prints the token once (give it to the client; it is not stored) and the entry for the
tokens file (`[gateway.auth] tokens_file`, mode 0600), which keeps only its SHA-256.
With `--file` the entry is added to that file (created 0600, replaced atomically, so
the running gateway reloads it whole) and only the token is printed:
`TOKEN=$(python -m gateway.tokens me --scopes read --file configs/tokens.toml)`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.auth import SCOPES, digest


def new_token() -> str:
    return "eq_" + secrets.token_urlsafe(32)


def entry(name: str, token: str, scopes: list[str], expires: datetime | None) -> str:
    lines = [
        "[[tokens]]",
        f'name = "{name}"',
        f'sha256 = "{digest(token)}"',
        "scopes = [" + ", ".join(f'"{scope}"' for scope in scopes) + "]",
    ]
    if expires is not None:
        lines.append(f"expires = {expires.isoformat(timespec='seconds').replace('+00:00', 'Z')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.tokens", description=__doc__)
    parser.add_argument("name", help="who uses it; services see it as x-actor")
    parser.add_argument("--scopes", default="read", help=f"comma-separated, of {', '.join(SCOPES)}")
    parser.add_argument("--days", type=int, default=0, help="expires after this many days")
    parser.add_argument(
        "--file", type=Path, help="add the entry to this tokens file; print only the token"
    )
    args = parser.parse_args(argv)
    scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]
    if not scopes or not set(scopes) <= set(SCOPES):
        parser.error(f"--scopes must be among {', '.join(SCOPES)}")
    expires = datetime.now(UTC) + timedelta(days=args.days) if args.days > 0 else None
    token = new_token()
    if args.file is None:
        print(f"token (shown once): {token}\n\n# add to the tokens file (chmod 600):")
        print(entry(args.name, token, scopes, expires))
        return
    try:
        append_entry(args.file, args.name, entry(args.name, token, scopes, expires))
    except ValueError as error:
        parser.error(str(error))
    print(f"added token {args.name!r} to {args.file}", file=sys.stderr)
    print(token)


def append_entry(path: Path, name: str, new_entry: str) -> None:
    """Adds `new_entry` to the tokens file at `path`, written whole under mode 0600 and
    moved into place, so a reader never sees half of it; raises ValueError."""
    existing = path.read_text() if path.exists() else ""
    try:
        names = [str(each.get("name")) for each in tomllib.loads(existing).get("tokens", [])]
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from None
    if name in names:
        raise ValueError(f"{path} already has a token named {name!r}")
    text = (existing.rstrip("\n") + "\n\n" if existing.strip() else "") + new_entry + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(partial, path)


if __name__ == "__main__":
    main()
