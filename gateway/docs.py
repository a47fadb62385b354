"""/docs: Swagger UI over /openapi.json, served from the swagger-ui-bundle package.

The device is offline, so no CDN: the assets ship in the wheel and are served by
StaticFiles; the page loads nothing from elsewhere and runs no inline script (its CSP
allows 'self' only).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
# Swagger UI sets inline styles and loads the spec with fetch, hence these sources.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'"
)
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>EdgeQuant API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true
});
"""


async def _page(_request: Request) -> Response:
    return HTMLResponse(_PAGE, headers={"Content-Security-Policy": CSP})


async def _init(_request: Request) -> Response:
    return Response(_INIT, media_type="text/javascript")


def routes() -> list[BaseRoute]:
    return [
        Route("/docs", _page),
        Route("/docs/init.js", _init),
        Mount(ASSETS, app=StaticFiles(directory=Path(swagger_ui_path))),
    ]
