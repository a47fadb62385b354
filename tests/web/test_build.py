"""The committed web UI build (gateway/webui/) matches web/'s sources, as the codegen
drift test does for generated code: `make web` and commit when this fails. The same
hashing rule as web/scripts/manifest.mjs."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

from gateway import ui

WEB = Path(__file__).resolve().parents[2] / "web"
SKIPPED = {"node_modules", "tests"}


def source_hash(web: Path) -> tuple[str, int]:
    files = sorted(
        path.relative_to(web).as_posix()
        for path in web.rglob("*")
        if path.is_file() and path.relative_to(web).parts[0] not in SKIPPED
    )
    digest = hashlib.sha256()
    for name in files:
        content = hashlib.sha256((web / name).read_bytes()).hexdigest()
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest(), len(files)


def test_the_committed_build_is_from_the_current_sources() -> None:
    manifest = json.loads((ui.BUILD_DIR / ui.MANIFEST).read_text())
    expected, count = source_hash(WEB)
    stale = "gateway/webui/ is stale: run `make web` and commit gateway/webui/"
    assert manifest["sources"] == count, stale
    assert manifest["source_sha256"] == expected, stale
    built = sorted(path.name for path in (ui.BUILD_DIR / "assets").iterdir())
    assert built == manifest["assets"], "gateway/webui/assets/ holds files the build did not make"


def test_the_build_is_small() -> None:
    """Initial JS (what index.html loads) <= 150 KB gzip; the whole build <= 1 MiB."""
    index = (ui.BUILD_DIR / ui.INDEX).read_text()
    initial = [
        name
        for name in json.loads((ui.BUILD_DIR / ui.MANIFEST).read_text())["assets"]
        if f"/assets/{name}" in index and name.endswith(".js")
    ]
    assert initial
    initial_gzip = sum(
        len(gzip.compress((ui.BUILD_DIR / "assets" / name).read_bytes(), 9)) for name in initial
    )
    assert initial_gzip <= 150_000
    total = sum(path.stat().st_size for path in ui.BUILD_DIR.rglob("*") if path.is_file())
    assert total <= 1024 * 1024
