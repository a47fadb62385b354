"""`python -m gateway.tokens NAME --scopes read,trade [--days 90]`: a new bearer token.

Prints the token once (give it to the client; it is not stored) and the entry to add
to the tokens file (`[gateway.auth] tokens_file`, mode 0600), which keeps only its
SHA-256.
"""

from __future__ import annotations

import argparse
import secrets
from datetime import UTC, datetime, timedelta

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
    args = parser.parse_args(argv)
    scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]
    if not scopes or not set(scopes) <= set(SCOPES):
        parser.error(f"--scopes must be among {', '.join(SCOPES)}")
    expires = datetime.now(UTC) + timedelta(days=args.days) if args.days > 0 else None
    token = new_token()
    print(f"token (shown once): {token}\n\n# add to the tokens file (chmod 600):")
    print(entry(args.name, token, scopes, expires))


if __name__ == "__main__":
    main()
