"""The web UI's static files (gateway/ui.py): only files inside the build are served,
the SPA fallback never covers the API's paths, and the caching and CSP headers are
the UI's own, leaving the API's unchanged. Explicitly for `/` and every built asset."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from common.config import SERVICE_NAMES
from common.testing import isolated_config
from gateway import ui
from gateway.testing import config_with, recording, serve_gateway

API_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGE = {"accept": "text/html,application/xhtml+xml"}
INDEX = (ui.BUILD_DIR / ui.INDEX).read_bytes()
ASSETS = json.loads((ui.BUILD_DIR / ui.MANIFEST).read_text())["assets"]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    environment = isolated_config(tmp_path)
    async with recording() as (_recorder, address):
        addresses = {f"{name.upper()}__ADDRESS": address for name in SERVICE_NAMES}
        async with serve_gateway(config_with(environment, **addresses)) as gateway:
            yield gateway


async def _raw_get(client: httpx.AsyncClient, raw_path: bytes, **headers: str) -> httpx.Response:
    """A GET whose path reaches the server byte for byte (no client-side dot removal)."""
    request = client.build_request("GET", "/", headers=headers)
    request.url = request.url.copy_with(raw_path=raw_path)
    return await client.send(request)


def _is_ui_page(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.content == INDEX


async def test_root_is_the_page_with_the_ui_csp_and_never_cached(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert _is_ui_page(response)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    csp = response.headers["content-security-policy"]
    assert csp == ui.CSP
    # Only this origin (and the chart's one attribution style hash): no inline script,
    # no other host, no framing.
    for loophole in ("'unsafe-inline'", "'unsafe-eval'", "http", "*", "data: ;"):
        assert loophole not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert b'<script type="module" crossorigin src="/assets/' in response.content


async def test_every_built_asset_is_served_immutable_with_its_type(
    client: httpx.AsyncClient,
) -> None:
    assert ASSETS, "the build has no assets"
    for name in ASSETS:
        response = await client.get(f"/assets/{name}")
        assert response.status_code == 200, name
        assert response.content == (ui.BUILD_DIR / "assets" / name).read_bytes()
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["content-security-policy"] == ui.CSP
        expected = "text/css" if name.endswith(".css") else "javascript"
        assert expected in response.headers["content-type"], name


async def test_page_navigations_fall_back_to_the_page_but_files_and_api_clients_do_not(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/trade", "/backtest", "/some/deep/link"):
        response = await client.get(path, headers=PAGE)
        assert _is_ui_page(response), path
        assert response.headers["cache-control"] == "no-store"
    # A missing file, or a client that does not ask for HTML: the API's 404 Status.
    for path, headers in (("/assets/missing.js", PAGE), ("/trade", {"accept": "*/*"})):
        response = await client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.json()["code"] == 5
        assert response.headers["content-security-policy"] == API_CSP


@pytest.mark.parametrize(
    "path",
    [
        "/v1/nowhere",
        "/v1/orders",
        "/v1",
        "/docs/nowhere",
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/docs",
    ],
)
async def test_the_fallback_never_answers_the_apis_paths(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers=PAGE)
    assert not _is_ui_page(response)
    if path.startswith("/v1"):
        # The API's own answer (401: no token), with the API's CSP.
        assert response.status_code in (401, 404)
        assert response.headers["content-security-policy"] == API_CSP


async def test_other_methods_on_ui_paths_are_the_apis_answers(client: httpx.AsyncClient) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = await client.request(method, "/", headers=PAGE)
        assert not _is_ui_page(response)
        assert response.status_code in (401, 404, 405)


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/assets/../ui.py",
        b"/assets/../../gateway/ui.py",
        b"/../ui.py",
        b"/assets/%2e%2e/ui.py",
        b"/assets/%2e%2e/%2e%2e/pyproject.toml",
        b"/%2e%2e/%2e%2e/pyproject.toml",
        b"/assets/..%2fui.py",
        b"/assets/..%5cui.py",
        b"/assets/%252e%252e/ui.py",
        b"//etc/passwd",
        b"/assets//etc/passwd",
        b"/%00index.html",
        b"/manifest.json",
    ],
)
async def test_nothing_outside_the_build_is_served(
    client: httpx.AsyncClient, raw_path: bytes
) -> None:
    response = await _raw_get(client, raw_path, accept="*/*")
    body = response.content
    assert response.status_code in (400, 404), (raw_path, response.status_code)
    for secret in (b"BUILD_DIR", b"root:", b"[project]", b"source_sha256"):
        assert secret not in body


def test_a_symlink_out_of_the_build_is_not_followed(tmp_path: Path) -> None:
    build = tmp_path / "webui"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text("<!doctype html>")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (build / "assets" / "link.js").symlink_to(secret)
    (build / "assets" / "app.js").write_text("1")
    assert ui._file_in_build(build, "/assets/link.js") is None
    assert ui._file_in_build(build, "/assets/app.js") == (build / "assets" / "app.js").resolve()
    assert ui._file_in_build(build, "/assets") is None  # a directory
