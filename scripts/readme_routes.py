"""The README's table of HTTP routes, generated from the protos' google.api.http
annotations (the gateway's only source of RPC routes) with the scope each one needs, and
the gateway's own /v1/whoami.

    python scripts/readme_routes.py           # print the table
    python scripts/readme_routes.py --write   # replace it in README.md
    python scripts/readme_routes.py --check   # exit 1 if README.md's table is stale

The table sits between `<!-- routes:start -->` and `<!-- routes:end -->`;
tests/scripts/test_readme_routes.py fails when it differs from the annotations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from gateway import whoami  # noqa: E402
from gateway.auth import required_scope  # noqa: E402
from gateway.bindings import bindings_of, service_descriptors  # noqa: E402

README = ROOT / "README.md"
START, END = "<!-- routes:start -->", "<!-- routes:end -->"


def table() -> str:
    rows = [
        "| method | path | RPC | scope |",
        "|---|---|---|---|",
    ]
    for binding in bindings_of(service_descriptors()):
        method = binding.rpc.method
        rpc = f"{method.containing_service.name}.{method.name}"
        if binding.rpc.server_streaming:
            rpc += " (stream)"
        path = binding.template.text.replace("|", "\\|")
        rows.append(f"| {binding.http_method} | `{path}` | {rpc} | {required_scope(binding)} |")
    # The gateway's own route that needs a token (no RPC behind it).
    rows.append(f"| GET | `{whoami.PATH}` | gateway: WhoAmI | {whoami.SCOPE} |")
    return "\n".join(rows)


def with_table(readme: str) -> str:
    """`readme` with its routes table replaced; raises ValueError without the markers."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs {START} and {END} around the routes table")
    return f"{readme[: start + len(START)]}\n{table()}\n{readme[end:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="update README.md")
    action.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args()
    if not (args.write or args.check):
        print(table())
        return
    readme = README.read_text()
    updated = with_table(readme)
    if args.write:
        README.write_text(updated)
    elif updated != readme:
        sys.exit("README.md's routes table is stale: run python scripts/readme_routes.py --write")


if __name__ == "__main__":
    main()
