"""The web UI in Debian's chromium (never a downloaded browser) against the real offline
stack as `make run` starts it (supervisord, every service, the gateway) on free ports in
a temp dir. Every test checks that the page logged no console error and asked nothing of
any host but the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    ViewportSize,
    sync_playwright,
)

from common.testing import isolated_config
from gateway.auth import digest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "eq-web-ui-test-token"  # noqa: S105 (a test stack's own token)
READ_TOKEN = "eq-web-ui-reader"  # noqa: S105
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass(frozen=True)
class UiStack:
    url: str
    token: str
    environment: dict[str, str]


def _chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is absent: apt-get install chromium (.ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    """`python -m common.stack` with one read+trade+admin token, until /healthz is 200."""
    _chromium_or_skip()
    directory = tmp_path_factory.mktemp("stack")
    environment = isolated_config(
        directory,
        GATEWAY__AUTH__TOKENS=(
            f"web-ui:{digest(TOKEN)}:read+trade+admin,web-reader:{digest(READ_TOKEN)}:read"
        ),
        GATEWAY__LIMITS__RATE_PER_SECOND="1000",
        GATEWAY__LIMITS__BURST="2000",
    )
    port = next(
        line.split("=")[1].strip()
        for line in Path(environment["EDGEQUANT_CONFIG"]).read_text().splitlines()
        if line.startswith("port =")
    )
    url = f"http://127.0.0.1:{port}"
    log = (directory / "stack.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "common.stack"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"the stack did not become healthy; see {directory}/stack.log")
            time.sleep(0.2)
        yield UiStack(url=url, token=TOKEN, environment=environment)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    _chromium_or_skip()
    chromium = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
    )
    yield chromium
    chromium.close()


@dataclass
class Watched:
    """A page and what it did that it must not: console errors, requests elsewhere."""

    page: Page
    origin: str
    shots: Path
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.foreign_requests == [], self.foreign_requests

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def log_in(self, token: str) -> None:
        self.page.goto(self.origin + "/")
        self.page.get_by_test_id("token").fill(token)
        self.page.get_by_role("button", name="Log in").click()
        self.page.get_by_test_id("who").wait_for()


def watch(page: Page, origin: str, shots: Path) -> Watched:
    watched = Watched(page=page, origin=origin, shots=shots)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    def on_request(request: Request) -> None:
        if not request.url.startswith(origin + "/"):
            watched.foreign_requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(str(error)))
    page.on("request", on_request)
    return watched


@pytest.fixture
def ui(browser: Browser, ui_stack: UiStack, tmp_path: Path) -> Iterator[Watched]:
    """A fresh desktop browser context on the stack's UI; screenshots go to tmp_path."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    watched = watch(context.new_page(), ui_stack.url, tmp_path)
    yield watched
    context.close()
    watched.assert_clean()
