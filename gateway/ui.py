"""The web UI: the static build in gateway/webui/ (made by `make web` from web/,
committed, installed with the package), served at `/` on the API's own origin.

- `/assets/*` are content-hashed by Vite: cached for a year, immutable.
- index.html (at `/` and as the SPA fallback) is `no-store`, so a new build shows at once.
- The SPA fallback answers only a browser navigation (GET/HEAD asking for text/html, a
  last segment without a dot) and never under /v1/, /healthz, /metrics, /openapi.json or
  /docs: those keep their own answers (an unknown API path stays a google.rpc.Status 404).
- A file is served only if its resolved path lies inside the build directory.
- UI responses carry their own CSP ('self' only); the API's stays as it is.
- Files are read once and kept (the whole build is a few hundred KiB): no file I/O or
  worker threads per request, which a phone's reloads would otherwise cost in RSS.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

BUILD_DIR = Path(__file__).resolve().parent / "webui"
INDEX = "index.html"
# Written by web/scripts/manifest.mjs; not a page.
MANIFEST = "manifest.json"
EXCLUDED_PREFIXES = ("/v1/", "/docs/")
EXCLUDED_PATHS = frozenset({"/v1", "/healthz", "/metrics", "/openapi.json", "/docs"})
# lightweight-charts' attribution logo is the only inline style (its <style> element's
# hash, of lightweight-charts 5.x); everything else comes from this origin.
ATTRIBUTION_STYLE = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='"
CSP = (
    "default-src 'self'; script-src 'self'; "
    f"style-src 'self' {ATTRIBUTION_STYLE}; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
IMMUTABLE = "public, max-age=31536000, immutable"
NO_STORE = "no-store"
# Non-hashed files beside index.html (notices, icon): revalidated on every use.
NO_CACHE = "no-cache"

Handler = Callable[[Request], Awaitable[Response]]


def excluded(path: str) -> bool:
    """Paths the UI never answers (the API's, the health and metrics endpoints, docs)."""
    return path in EXCLUDED_PATHS or path.startswith(EXCLUDED_PREFIXES)


def _file_in_build(build_dir: Path, path: str) -> Path | None:
    """The file `path` names inside `build_dir`, or None (absent, a directory, outside)."""
    relative = path.lstrip("/")
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    root = build_dir.resolve()
    try:
        candidate = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    if candidate == root / MANIFEST:
        return None
    return candidate


def _wants_page(request: Request) -> bool:
    last = request.url.path.rsplit("/", 1)[-1]
    return "." not in last and "text/html" in request.headers.get("accept", "")


class WebUi:
    """Answers UI requests and hands every other one to `fallback` (the RPC proxy)."""

    def __init__(self, fallback: Handler, build_dir: Path = BUILD_DIR) -> None:
        self.fallback = fallback
        self.build_dir = build_dir
        self.available = (build_dir / INDEX).is_file()
        self._assets = (build_dir / "assets").resolve()
        self._files: dict[Path, bytes] = {}

    def _read(self, path: Path) -> bytes:
        content = self._files.get(path)
        if content is None:
            content = self._files[path] = path.read_bytes()
        return content

    def _index(self, request: Request) -> Response:
        return self._file(request, (self.build_dir / INDEX).resolve(), NO_STORE)

    def _file(self, request: Request, path: Path, cache: str) -> Response:
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type.endswith("javascript"):
            media_type += "; charset=utf-8"
        content = self._read(path)
        headers = {"Cache-Control": cache, "Content-Security-Policy": CSP}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(content))
            return Response(b"", media_type=media_type, headers=headers)
        return Response(content, media_type=media_type, headers=headers)

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        if not self.available or request.method not in ("GET", "HEAD") or excluded(path):
            return await self.fallback(request)
        if path == "/":
            return self._index(request)
        found = _file_in_build(self.build_dir, path)
        if found is not None:
            if found.name == INDEX:
                return self._index(request)
            hashed = found.parent == self._assets
            return self._file(request, found, IMMUTABLE if hashed else NO_CACHE)
        if _wants_page(request):
            return self._index(request)
        return await self.fallback(request)
