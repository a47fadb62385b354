"""The web UI: its size, how soon the Overview is ready, how fast it draws a big chart,
and what serving it costs the gateway. In Debian's chromium driven by Playwright, against
the stack as `make run` starts it (temp dir, free ports).

- build: initial JS (what index.html loads) gzipped, and the whole committed build;
- Overview ready: navigation start to the DOM marker that every panel has data
  (`data-ready="true"`), beside /docs (Swagger UI) showing its operations, same run;
- chart (medians of REPEATS): a dataset of N candles (a random walk, 1-minute bars)
  drawn by the Backtest page (its TimeChart's `chart-draw:` performance measure, from
  series creation to the paint)
  beside lightweight-charts alone in a bare page drawing the same candles the same way;
- gateway RSS: after API calls only, and again after serving every page of the UI.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import random
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

import httpx
from playwright.async_api import Browser, async_playwright

from bench.report import Row
from bench.section import SectionFailed, sized
from common.memory import MIB, rss_bytes
from common.testing import Stack, isolated_config, running_stack
from gateway import ui
from gateway.auth import digest

SECTION = "web"
TOKEN = "eq-bench-web"  # noqa: S105 - a throwaway token of a temporary stack
CANDLES = sized(100_000, 2_000)
REPEATS = sized(5, 1)
FILE_ROUNDS = sized(50, 5)
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CHART_LIBRARY = (
    Path(__file__).resolve().parents[1]
    / "web/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js"
)
CANDLE_CHART = "chart-draw:Dataset candles with the run's trades"
BARE_PAGE = """<!doctype html><html><body style="margin:0">
<div id="chart" style="width:1300px;height:300px"></div></body></html>"""
# The bare page does what TimeChart does: a candlestick series, setData, fitContent, and
# the time to the end of the chart's next paint.
BARE_DRAW = """async (rows) => {
  const element = document.getElementById('chart');
  const chart = LightweightCharts.createChart(element, {height: 300, autoSize: true});
  const data = rows.map(([time, open, high, low, close]) => ({time, open, high, low, close}));
  const started = performance.now();
  const series = chart.addSeries(LightweightCharts.CandlestickSeries, {borderVisible: false});
  series.setData(data);
  chart.timeScale().fitContent();
  await new Promise((resolve) => requestAnimationFrame(resolve));
  return performance.now() - started;
}"""


def _assets() -> list[str]:
    return list(json.loads((ui.BUILD_DIR / ui.MANIFEST).read_text())["assets"])


def _build_rows() -> list[Row]:
    manifest = json.loads((ui.BUILD_DIR / ui.MANIFEST).read_text())
    index = (ui.BUILD_DIR / ui.INDEX).read_text()
    initial = [name for name in manifest["assets"] if name.endswith(".js") and name in index]
    initial_gzip = sum(
        len(gzip.compress((ui.BUILD_DIR / "assets" / name).read_bytes(), 9)) for name in initial
    )
    total = sum(path.stat().st_size for path in ui.BUILD_DIR.rglob("*") if path.is_file())
    return [
        Row(SECTION, "initial JS, gzip", "KB", initial_gzip / 1000, target="<= 150"),
        Row(SECTION, "whole build", "KiB", total / 1024, target="<= 1024"),
    ]


def _candles_csv(count: int) -> bytes:
    generator = random.Random(7)
    price = 30_000.0
    lines = ["time,open,high,low,close,volume"]
    start = 1_700_000_000_000
    for index in range(count):
        close = max(1.0, price * (1 + generator.gauss(0, 0.001)))
        high = max(price, close) * (1 + abs(generator.gauss(0, 0.0005)))
        low = min(price, close) * (1 - abs(generator.gauss(0, 0.0005)))
        lines.append(f"{start + index * 60_000},{price:.2f},{high:.2f},{low:.2f},{close:.2f},1.5")
        price = close
    return "\n".join(lines).encode()


async def _dataset_with_a_run(client: httpx.AsyncClient) -> tuple[str, list[list[float]]]:
    """Imports the candles (in chunks: the gateway takes 1 MiB bodies), runs buy-and-hold
    on them; returns the dataset id and its candles as the page will draw them."""
    content = _candles_csv(CANDLES)
    chunk = 512 * 1024
    upload_id = ""
    dataset_id = ""
    for offset in range(0, len(content), chunk):
        piece = content[offset : offset + chunk]
        body = {
            "name": "bench web",
            "format": "DATASET_FORMAT_CSV",
            "symbol": "BENCH/USDT",
            "content": base64.b64encode(piece).decode(),
            "more_chunks": offset + chunk < len(content),
        }
        if upload_id:
            body.update(upload_id=upload_id, chunk_offset=str(offset))
        answer = (await client.post("/v1/datasets", json=body)).raise_for_status().json()
        upload_id = answer.get("uploadId", upload_id)
        dataset_id = (answer.get("dataset") or {}).get("datasetId", dataset_id)
    if not dataset_id:
        raise SectionFailed("the chunked import gave no dataset")
    job = (
        (
            await client.post(
                "/v1/backtests",
                json={"dataset_id": dataset_id, "engine": "ENGINE_BAR", "strategy": "buy_and_hold"},
            )
        )
        .raise_for_status()
        .json()["job"]
    )
    for _ in range(600):
        state = (await client.get(f"/v1/jobs/{job['jobId']}")).json()["job"]["state"]
        if state == "JOB_STATE_SUCCEEDED":
            break
        if state in ("JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            raise SectionFailed(f"the backtest ended {state}")
        await asyncio.sleep(0.2)
    rows: list[list[float]] = []
    token = ""
    while True:
        params = {"page_size": "5000", **({"page_token": token} if token else {})}
        page = (await client.get(f"/v1/datasets/{dataset_id}/candles", params=params)).json()
        for candle in page.get("candles", []):
            opened = datetime.fromisoformat(candle["openTime"].replace("Z", "+00:00"))
            seconds = int(opened.timestamp())
            rows.append([seconds, *(float(candle[k]) for k in ("open", "high", "low", "close"))])
        token = page.get("nextPageToken", "")
        if not token:
            return dataset_id, rows


async def _page_timings(browser: Browser, url: str) -> tuple[list[float], list[float]]:
    """Overview ready and /docs shown, ms from navigation start, REPEATS times each."""
    overview: list[float] = []
    docs: list[float] = []
    for _ in range(REPEATS):
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        await context.add_init_script(f"sessionStorage.setItem('edgequant.token', '{TOKEN}')")
        page = await context.new_page()
        await page.goto(url + "/")
        await page.wait_for_selector("[data-ready='true']", timeout=120_000)
        overview.append(await page.evaluate("performance.now()"))
        await page.goto(url + "/docs")
        await page.wait_for_selector(".opblock", timeout=120_000)
        docs.append(await page.evaluate("performance.now()"))
        await context.close()
    return overview, docs


async def _chart_timings(
    browser: Browser, url: str, rows: list[list[float]]
) -> tuple[float, float]:
    """The Backtest page drawing the run's candles, and the bare library, in ms."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    await context.add_init_script(f"sessionStorage.setItem('edgequant.token', '{TOKEN}')")
    page = await context.new_page()
    await page.goto(url + "/backtest")
    await page.get_by_test_id("jobs").locator("tbody tr button").first.click()
    # Polled from here: the page's CSP (no 'unsafe-eval') refuses wait_for_function.
    entries = f"performance.getEntriesByName({json.dumps(CANDLE_CHART)})"
    for _ in range(3000):
        if await page.evaluate(f"{entries}.length"):
            break
        await asyncio.sleep(0.1)
    else:
        raise SectionFailed("the Backtest page never drew the candles")
    ours = await page.evaluate(f"{entries}[0].duration")
    await context.close()
    bare_context = await browser.new_context(viewport={"width": 1366, "height": 900})
    bare = await bare_context.new_page()
    await bare.set_content(BARE_PAGE)
    await bare.add_script_tag(path=str(CHART_LIBRARY))
    library = await bare.evaluate(BARE_DRAW, rows)
    await bare_context.close()
    return float(ours), float(library)


async def _measure(stack: Stack) -> list[Row]:
    gateway_pid = stack.programs()["gateway"].pid
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=60) as client:
        # The API as a script uses it, before any UI file is asked for.
        for path in ("/v1/accounts", "/v1/risk/exposure", "/v1/strategies", "/openapi.json"):
            (await client.get(path)).raise_for_status()
        dataset_id, rows = await _dataset_with_a_run(client)
        await asyncio.sleep(1)
        rss_api = rss_bytes(gateway_pid) / MIB
        # The UI's files alone, as many browsers loading it afresh would ask for them.
        files = ["/", "/favicon.svg", *(f"/assets/{name}" for name in _assets())]
        for _ in range(FILE_ROUNDS):
            for path in files:
                (await client.get(path, headers={"accept": "text/html"})).raise_for_status()
        await asyncio.sleep(1)
        rss_files = rss_bytes(gateway_pid) / MIB
        if not CHART_LIBRARY.exists():
            raise SectionFailed(f"{CHART_LIBRARY} is absent: run `make web` (npm ci) first")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                overview, docs = await _page_timings(browser, stack.gateway_url)
                charts = [
                    await _chart_timings(browser, stack.gateway_url, rows) for _ in range(REPEATS)
                ]
                ours = statistics.median(page for page, _ in charts)
                library = statistics.median(bare for _, bare in charts)
            finally:
                await browser.close()
        await asyncio.sleep(1)
        rss_ui = rss_bytes(gateway_pid) / MIB
        await client.delete(f"/v1/datasets/{dataset_id}")
    return [
        Row(
            SECTION, "Overview ready from navigation", "ms", statistics.median(overview),
            baseline=statistics.median(docs), baseline_name="/docs shows its operations",
        ),
        Row(
            SECTION, f"chart of {len(rows):,} candles drawn by the page", "ms", ours,
            baseline=library, baseline_name="lightweight-charts in a bare page",
            target=f"<= {1.5 * library:.0f} (1.5x)",
        ),
        Row(
            SECTION, f"gateway RSS after serving every UI file {FILE_ROUNDS}x", "MiB", rss_files,
            baseline=rss_api, baseline_name="after API calls only",
            target=f"<= {rss_api + 2:.1f} (+2)",
        ),
        Row(
            SECTION, "gateway RSS after the browser sessions", "MiB", rss_ui,
            baseline=rss_api, baseline_name="after API calls only",
        ),
    ]  # fmt: skip


async def run() -> list[Row]:
    rows = _build_rows()
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-web-") as directory:
        environment = isolated_config(
            Path(directory) / "stack",
            GATEWAY__AUTH__TOKENS=f"bench:{digest(TOKEN)}:read+trade+admin",
            GATEWAY__LIMITS__RATE_PER_SECOND="100000",
            GATEWAY__LIMITS__BURST="100000",
        )
        async with running_stack(environment, within=120) as stack:
            rows += await _measure(stack)
    return rows


if __name__ == "__main__":  # `python -m bench.web`: this section alone
    from bench.report import table

    print(table(asyncio.run(run())))
