"""/docs renders the OpenAPI document in a real Chromium, from local assets only."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Request

from gateway.bindings import bindings_of, service_descriptors


async def test_the_documentation_page_renders_every_operation_offline(
    gateway: httpx.AsyncClient, browser: Browser
) -> None:
    page = await browser.new_page()
    elsewhere: list[str] = []

    def record(request: Request) -> None:
        if not request.url.startswith(str(gateway.base_url)):
            elsewhere.append(request.url)

    page.on("request", record)
    await page.goto(f"{gateway.base_url}/docs")
    await page.wait_for_selector(".opblock", timeout=20_000)
    rendered = await page.locator(".opblock").count()
    assert rendered == len(bindings_of(service_descriptors())) + 2  # and /healthz, /v1/whoami
    assert "SubmitOrder" in await page.content()
    assert elsewhere == []  # no CDN: the device is offline
