"""The trader's screen end to end: log in, the overview shows data, a paper order is
placed and cancelled, the kill switch denies the next order and is lifted, a small
backtest shows its result and a sweep its table; every page at desktop and phone width
in both themes (screenshots under the test's tmp dir), each tabbed through by keyboard.
The fixtures (conftest.py) fail a test on any console error or foreign request."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import DESKTOP, PHONE, READ_TOKEN, UiStack, Watched, watch

pytestmark = pytest.mark.stack

PAGES = ["/", "/trade", "/orders", "/risk", "/backtest", "/runners", "/activity", "/about"]
FOCUSABLE = (
    "a[href]:visible, button:not([disabled]):visible, input:not([disabled]):visible, "
    "select:not([disabled]):visible, [tabindex='0']:visible"
)


def _overview_ready(page: Page) -> None:
    expect(page.get_by_test_id("overview")).to_have_attribute("data-ready", "true", timeout=60_000)


def test_log_in_and_the_overview_shows_data(ui: Watched, ui_stack: UiStack) -> None:
    ui.page.goto(ui_stack.url + "/")
    expect(ui.page.get_by_role("heading", name="Log in")).to_be_visible()
    ui.page.get_by_test_id("token").fill("not-a-token")
    ui.page.get_by_role("button", name="Log in").click()
    expect(ui.page.get_by_role("alert")).to_be_visible()
    # The refused token's 401 is the one console line we caused on purpose.
    ui.console_errors.clear()
    ui.log_in(ui_stack.token)
    expect(ui.page.get_by_test_id("who")).to_contain_text("web-ui")
    _overview_ready(ui.page)
    expect(ui.page.get_by_test_id("balances")).to_contain_text("USDT")
    expect(ui.page.get_by_test_id("equity")).to_contain_text("Equity")
    expect(ui.page.get_by_test_id("health")).to_have_text("healthy")
    expect(ui.page.get_by_test_id("trading-state")).to_have_text("ACTIVE")
    # The token stays in this tab only (sessionStorage), never in a URL.
    assert ui.page.evaluate("sessionStorage.getItem('edgequant.token')") == ui_stack.token
    assert ui.page.evaluate("localStorage.getItem('edgequant.token')") is None
    assert ui_stack.token not in ui.page.url
    ui.shot("overview-desktop-light")


def test_a_read_only_token_sees_everything_and_changes_nothing(
    ui: Watched, ui_stack: UiStack
) -> None:
    ui.log_in(READ_TOKEN)
    expect(ui.page.get_by_test_id("who")).to_contain_text("web-reader (read)")
    expect(ui.page.get_by_test_id("kill-switch")).to_be_disabled()
    ui.page.get_by_role("link", name="Trade").click()
    price = _limit_price_below(ui.page)
    _ticket(ui.page, "0.001", price, check=False)
    # A real check spends the account's order-rate budget: the pre-check and the order
    # both need the trade scope.
    expect(ui.page.get_by_test_id("check")).to_be_disabled()
    expect(ui.page.get_by_test_id("submit")).to_be_disabled()
    ui.page.get_by_role("link", name="Backtest").click()
    expect(ui.page.get_by_test_id("import")).to_be_disabled()
    expect(ui.page.get_by_test_id("run")).to_be_disabled()
    # The limits it may not change read as values, not as inputs, and say who may.
    ui.page.get_by_role("link", name="Risk").click()
    limits = ui.page.get_by_test_id("limits")
    expect(limits.locator("tr", has_text="Max leverage")).to_contain_text("2")
    expect(ui.page.get_by_test_id("limits-read-only")).to_contain_text("needs the admin scope")
    expect(limits.get_by_role("textbox")).to_have_count(0)
    # A zero cooldown is no cooldown at all: "none", not "no limit" (an endless one).
    expect(limits.locator("tr[title='loss_cooldown_seconds']")).to_contain_text("none")
    expect(limits.locator("tr[title='loss_cooldown_trades']")).to_contain_text("off")
    expect(ui.page.get_by_role("button", name="Save limits")).to_have_count(0)
    ui.shot("risk-read-only")


TITLES = {
    "/": "Overview",
    "/trade": "Trade",
    "/orders": "Orders & fills",
    "/risk": "Risk",
    "/backtest": "Backtest",
    "/runners": "Runners",
    "/activity": "Activity",
    "/about": "About",
}


def test_each_page_titles_its_browser_tab(ui: Watched, ui_stack: UiStack) -> None:
    ui.log_in(ui_stack.token)
    for path, title in TITLES.items():
        ui.page.goto(ui_stack.url + path)
        expect(ui.page).to_have_title(f"{title} · EdgeQuant")
    # Moving within the app retitles the tab too.
    ui.page.get_by_role("link", name="Orders & fills").click()
    expect(ui.page).to_have_title("Orders & fills · EdgeQuant")


def test_the_overview_shows_a_halt_set_before_it_opened(ui: Watched, ui_stack: UiStack) -> None:
    headers = {"Authorization": f"Bearer {ui_stack.token}"}
    reason = "e2e: venue maintenance"

    def set_paper(state: str) -> None:
        answer = httpx.put(
            f"{ui_stack.url}/v1/risk/trading-state",
            headers=headers,
            json={"state": state, "reason": reason, "accountId": "paper"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text

    set_paper("TRADING_STATE_HALTED")
    try:
        ui.log_in(ui_stack.token)
        _overview_ready(ui.page)
        states = ui.page.get_by_test_id("trading-states")
        halted = states.locator("li", has_text="paper")
        expect(halted).to_contain_text("HALTED")
        expect(halted).to_contain_text(reason)
        # The global switch is untouched: only the paper account is halted.
        expect(ui.page.get_by_test_id("trading-state")).to_have_text("ACTIVE")
        ui.shot("overview-halted-before-opening")
        set_paper("TRADING_STATE_ACTIVE")
        # Followed live: the resumed account leaves the list.
        expect(states).to_contain_text("Trading is active on every account.")
    finally:
        set_paper("TRADING_STATE_ACTIVE")


def test_merged_fill_labels_on_the_last_candle_show_whole(ui: Watched, ui_stack: UiStack) -> None:
    headers = {"Authorization": f"Bearer {ui_stack.token}"}

    def market(side: str, quantity: str, number: int) -> None:
        answer = httpx.post(
            f"{ui_stack.url}/v1/orders",
            headers=headers,
            json={
                "venue": "paper",
                "symbol": "BTC/USDT",
                "side": side,
                "type": "ORDER_TYPE_MARKET",
                "quantity": quantity,
                "clientOrderId": f"e2e-label-{side}-{number}",
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text

    # Three buys and a sell that closes them, in the last candle: a merged label each side.
    for number in range(3):
        market("SIDE_BUY", "0.001", number)
    market("SIDE_SELL", "0.003", 0)
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Trade").click()
    expect(ui.page.get_by_test_id("candle-count")).to_contain_text(
        re.compile(r"[1-9]\d* candles, [4-9]\d* fills"), timeout=30_000
    )
    ui.page.wait_for_timeout(500)
    # A label the price scale cuts runs to the plot's last pixel columns: in colour over
    # many rows there. Whole, it ends before them (only the dashed last-price line and
    # the grey grid cross them).
    rows = ui.page.locator(".chart-card .chart").evaluate(_COLOURED_ROWS_AT_THE_PLOTS_RIGHT_EDGE)
    assert rows <= 3, f"a fill label is cut by the price scale ({rows} coloured rows at the edge)"
    ui.shot("trade-fill-labels")


# The plot is the chart's widest canvas (the first: its drawing layer); 3 columns at its
# right edge, counting the rows with a saturated pixel (labels and candles; the grid is grey).
_COLOURED_ROWS_AT_THE_PLOTS_RIGHT_EDGE = """chart => {
  const canvases = [...chart.querySelectorAll('canvas')]
  const plot = canvases.reduce((widest, each) => (each.width > widest.width ? each : widest))
  const columns = 3
  const edge = plot.getContext('2d').getImageData(plot.width - columns, 0, columns, plot.height)
  const pixels = edge.data
  const rows = new Set()
  for (let index = 0; index < pixels.length; index += 4) {
    const [red, green, blue] = [pixels[index], pixels[index + 1], pixels[index + 2]]
    const saturation = Math.max(red, green, blue) - Math.min(red, green, blue)
    if (saturation > 60) rows.add(Math.floor(index / 4 / columns))
  }
  return rows.size
}"""


def _limit_price_below(page: Page) -> str:
    book = page.get_by_test_id("order-book")
    expect(book.locator("tr.bid").first).to_be_visible(timeout=30_000)
    best_bid = Decimal(book.locator("tr.bid td").first.inner_text().strip())
    # Inside the risk price band, far enough below the bid not to fill during the test.
    return str((best_bid * Decimal("0.97")).quantize(Decimal(1)))


def _ticket(page: Page, quantity: str, price: str, *, check: bool = True) -> None:
    page.get_by_test_id("order-type").select_option("ORDER_TYPE_LIMIT")
    page.get_by_test_id("quantity").fill(quantity)
    page.get_by_test_id("price").fill(price)
    if check:
        page.get_by_test_id("check").click()


def test_place_and_cancel_a_paper_order(ui: Watched, ui_stack: UiStack) -> None:
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Trade").click()
    expect(ui.page.get_by_test_id("candle-count")).to_contain_text(
        re.compile(r"^[1-9]\d* candles"), timeout=30_000
    )
    price = _limit_price_below(ui.page)
    _ticket(ui.page, "0.001", price)
    expect(ui.page.get_by_test_id("precheck")).to_contain_text("APPROVE")
    ui.page.get_by_test_id("submit").click()
    expect(ui.page.get_by_test_id("last-order")).to_contain_text("OPEN")
    open_orders = ui.page.get_by_test_id("open-orders")
    # The order as typed: the price string exactly, not a float's rendering.
    expect(open_orders).to_contain_text(price)
    ui.shot("trade-with-open-order")
    open_orders.get_by_role("button", name="Cancel").first.click()
    expect(open_orders).to_contain_text("None.")
    expect(ui.page.get_by_test_id("last-order")).to_contain_text("CANCELED")


def test_the_kill_switch_denies_the_next_order_and_is_lifted(
    ui: Watched, ui_stack: UiStack
) -> None:
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Trade").click()
    price = _limit_price_below(ui.page)
    ui.page.get_by_test_id("kill-switch").click()
    ui.page.get_by_test_id("kill-reason").fill("e2e: halt")
    ui.page.get_by_test_id("kill-confirm").click()
    expect(ui.page.get_by_test_id("trading-state")).to_have_text("HALTED")
    _ticket(ui.page, "0.001", price)
    expect(ui.page.get_by_test_id("precheck")).to_contain_text("DENY")
    expect(ui.page.get_by_test_id("precheck")).to_contain_text("HALTED")
    expect(ui.page.get_by_test_id("submit")).to_be_disabled()
    ui.shot("trade-halted")
    ui.page.get_by_test_id("kill-switch").click()
    ui.page.get_by_test_id("kill-confirm").click()
    expect(ui.page.get_by_test_id("trading-state")).to_have_text("ACTIVE")
    ui.page.get_by_test_id("check").click()
    expect(ui.page.get_by_test_id("precheck")).to_contain_text("APPROVE")
    # Both changes in the merged live feed.
    ui.page.get_by_role("link", name="Activity").click()
    expect(ui.page.get_by_test_id("activity").locator("li.risk")).to_have_count(2)


def test_a_rejected_order_shows_why_on_the_orders_page(ui: Watched, ui_stack: UiStack) -> None:
    # Far more than the paper account holds: risk refuses it, and the order is kept REJECTED.
    answer = httpx.post(
        f"{ui_stack.url}/v1/orders",
        headers={"Authorization": f"Bearer {ui_stack.token}"},
        json={
            "venue": "paper",
            "symbol": "BTC/USDT",
            "side": "SIDE_BUY",
            "type": "ORDER_TYPE_MARKET",
            "quantity": "500",
            "clientOrderId": "e2e-too-big",
        },
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Orders & fills").click()
    row = ui.page.get_by_test_id("orders-table").locator("tr", has_text="REJECTED").first
    reason = row.get_by_test_id("reject-reason")
    # The human text and, below it, the stable codes (also the cell's title).
    expect(reason).to_contain_text("order rejected by risk")
    expect(reason.locator("code")).to_contain_text("RISK_INSUFFICIENT_BALANCE")
    expect(reason).to_have_attribute("title", re.compile(r"RISK_INSUFFICIENT_BALANCE"))
    ui.shot("orders-rejected")


def test_the_risk_limits_read_as_words_fit_their_card_and_save(
    ui: Watched, ui_stack: UiStack
) -> None:
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Risk").click()
    limits = ui.page.get_by_test_id("limits")
    row = limits.locator("tr", has_text="Max order notional")
    expect(row).to_contain_text("quote currency")
    # The raw key, as configs and update_mask spell it, for matching by hand.
    expect(row).to_have_attribute("title", "max_order_notional")
    expect(limits).not_to_contain_text("max_order_notional")
    expect(ui.page.get_by_label("Max open orders")).to_have_value("50")
    card = ui.page.locator("section", has=limits)
    overflow = card.evaluate("element => element.scrollWidth - element.clientWidth")
    assert overflow <= 0, f"the limits overflow their card by {overflow}px"
    # The label names its input: a trader edits by the words shown.
    ui.page.get_by_label("Max order notional").fill("2500000")
    ui.page.get_by_role("button", name="Save limits").click()
    expect(ui.page.get_by_role("status")).to_contain_text("saved 1 limit(s)")
    headers = {"Authorization": f"Bearer {ui_stack.token}"}
    stored = httpx.get(f"{ui_stack.url}/v1/risk/limits", headers=headers, timeout=30).json()
    assert stored["limits"]["maxOrderNotional"] == "2500000"
    ui.page.get_by_label("Max order notional").fill("")
    ui.page.get_by_role("button", name="Save limits").click()
    expect(ui.page.get_by_role("status")).to_contain_text("saved 1 limit(s)")
    stored = httpx.get(f"{ui_stack.url}/v1/risk/limits", headers=headers, timeout=30).json()
    assert stored["limits"].get("maxOrderNotional", "") == ""
    ui.shot("risk-limits")


def test_a_small_backtest_and_a_sweep_show_their_results(ui: Watched, ui_stack: UiStack) -> None:
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Backtest").click()
    ui.page.get_by_test_id("import").click()
    expect(ui.page.get_by_test_id("datasets")).to_contain_text("BTC/USDT", timeout=60_000)
    ui.page.get_by_test_id("strategy").select_option("sma_cross")
    ui.page.get_by_test_id("param-fast").fill("5")
    ui.page.get_by_test_id("param-slow").fill("20")
    ui.page.get_by_test_id("run").click()
    expect(ui.page.get_by_test_id("metrics")).to_contain_text("Sharpe", timeout=120_000)
    expect(ui.page.get_by_test_id("job-state")).to_contain_text("SUCCEEDED")
    ui.shot("backtest-result")
    ui.page.get_by_test_id("param-fast").fill("5, 8")
    ui.page.get_by_test_id("param-slow").fill("20, 30")
    ui.page.get_by_role("button", name="Run sweep").click()
    table = ui.page.get_by_test_id("sweep-table")
    expect(table.locator("tbody tr")).to_have_count(4, timeout=120_000)
    expect(ui.page.get_by_test_id("heatmap")).to_be_visible()
    ui.shot("backtest-sweep")
    # The single run beside the sweep's best: both jobs' metrics side by side.
    jobs = ui.page.get_by_test_id("jobs")
    expect(jobs.locator("tbody tr")).to_have_count(2)
    for row in range(2):
        jobs.locator("tbody tr").nth(row).get_by_role("checkbox").check()
    ui.page.get_by_role("button", name="Compare 2 runs").click()
    compare = ui.page.get_by_test_id("compare")
    expect(compare.locator("thead th")).to_have_count(3)
    expect(compare).to_contain_text("Sharpe")


def test_a_runner_is_created_from_a_backtest_started_stopped_and_deleted(
    ui: Watched, ui_stack: UiStack
) -> None:
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Backtest").click()
    ui.page.get_by_test_id("import").click()
    expect(ui.page.get_by_test_id("datasets")).to_contain_text("BTC/USDT", timeout=60_000)
    ui.page.get_by_test_id("strategy").select_option("sma_cross")
    ui.page.get_by_test_id("param-fast").fill("5")
    ui.page.get_by_test_id("param-slow").fill("20")
    ui.page.get_by_test_id("run").click()
    expect(ui.page.get_by_test_id("job-state")).to_contain_text("SUCCEEDED", timeout=120_000)

    ui.page.get_by_role("link", name="Runners").click()
    ui.page.get_by_role("button", name="Create runner").click()
    runners = ui.page.get_by_test_id("runners")
    row = runners.locator("tbody tr").filter(has_text="sma_cross")
    expect(row).to_contain_text("STOPPED", timeout=30_000)
    row.get_by_role("button", name="Start").click()
    expect(row).to_contain_text("RUNNING", timeout=60_000)
    ui.shot("runners-running")
    row.get_by_role("button", name="Stop").click()
    expect(row).to_contain_text("STOPPED", timeout=30_000)
    # On its first start a runner takes the position the strategy wants now: close it.
    row.get_by_role("button", name="Flatten").click()
    expect(row.locator("td").nth(5)).to_have_text(re.compile(r"^0(\.0*)?$"), timeout=30_000)
    ui.page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(runners).to_contain_text("No runners.", timeout=30_000)


def _tab_through(page: Page) -> list[str]:
    """Tabs from the top of the page; returns the focusable controls never reached."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.locator("body").focus()
    controls = page.locator(FOCUSABLE)
    count = controls.count()
    page.evaluate(
        "(selector) => document.querySelectorAll(selector).forEach((element, index) =>"
        " element.setAttribute('data-tab-index', String(index)))",
        "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled])",
    )
    reached: set[str] = set()
    for _ in range(count * 2 + 10):
        page.keyboard.press("Tab")
        index = page.evaluate("document.activeElement?.getAttribute('data-tab-index') ?? ''")
        if index:
            reached.add(index)
    missing = []
    for position in range(count):
        control = controls.nth(position)
        index = control.get_attribute("data-tab-index")
        if index is not None and index not in reached and control.is_visible():
            missing.append(control.evaluate("element => element.outerHTML.slice(0, 120)"))
    return missing


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_at_desktop_and_phone_width_by_keyboard(
    browser: Browser, ui_stack: UiStack, tmp_path_factory: pytest.TempPathFactory, theme: str
) -> None:
    shots = tmp_path_factory.mktemp(f"screenshots-{theme}")
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(30_000)
        context.add_init_script(f"localStorage.setItem('edgequant.theme', '{theme}')")
        ui = watch(context.new_page(), ui_stack.url, shots)
        ui.log_in(ui_stack.token)
        for path in PAGES:
            ui.page.goto(ui_stack.url + path)
            ui.page.get_by_test_id("who").wait_for()
            if path == "/":
                _overview_ready(ui.page)
            else:
                # Streams stay open (no network idle): the heading, then a moment for data.
                ui.page.locator("main h1").wait_for()
                ui.page.wait_for_timeout(1500)
            label = path.strip("/") or "overview"
            ui.shot(f"{label}-{name}-{theme}")
            if name == "desktop":
                assert _tab_through(ui.page) == [], f"{path}: controls the keyboard never reaches"
            else:
                # One column: nothing wider than the phone's screen.
                width = ui.page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"] + 1, f"{path} is {width}px wide on a phone"
        context.close()
        ui.assert_clean()
    print(f"screenshots: {shots}")


# The limits a trader sees and changes are the ones an order meets: per account, every field.


def _headers(ui_stack: UiStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {ui_stack.token}"}


def _limits(ui_stack: UiStack, account: str = "") -> dict[str, object]:
    answer = httpx.get(
        f"{ui_stack.url}/v1/risk/limits",
        params={"accountId": account} if account else {},
        headers=_headers(ui_stack),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def _patch_limits(ui_stack: UiStack, limits: dict[str, object], account: str = "") -> None:
    params = {"updateMask": ",".join(limits)} | ({"accountId": account} if account else {})
    answer = httpx.patch(
        f"{ui_stack.url}/v1/risk/limits",
        params=params,
        json=limits,
        headers=_headers(ui_stack),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_the_risk_page_shows_and_saves_an_accounts_own_limits(
    ui: Watched, ui_stack: UiStack
) -> None:
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Risk").click()
    whose = ui.page.get_by_test_id("limits-whose")
    notional = ui.page.get_by_label("Max order notional")
    try:
        ui.page.get_by_test_id("limits-account").select_option("paper")
        expect(whose).to_contain_text("paper follows the global defaults")
        # As the new user did: the account's own limit, set through the API.
        _patch_limits(ui_stack, {"maxOrderNotional": "5000"}, account="paper")
        ui.page.reload()
        ui.page.get_by_test_id("limits-account").select_option("paper")
        expect(whose).to_contain_text("paper has its own limits")
        expect(notional).to_have_value("5000")
        ui.page.get_by_test_id("limits-account").select_option("")
        expect(whose).to_contain_text("every account without limits of its own follows")
        expect(notional).to_have_value("")
        # Saved for the account, it is the account's that changes; the defaults stay.
        ui.page.get_by_test_id("limits-account").select_option("paper")
        expect(notional).to_have_value("5000")
        notional.fill("6000")
        ui.page.get_by_role("button", name="Save limits for paper").click()
        expect(ui.page.get_by_role("status")).to_contain_text("saved 1 limit(s) for paper")
        assert _limits(ui_stack, "paper")["limits"]["maxOrderNotional"] == "6000"  # type: ignore[index]
        assert _limits(ui_stack)["limits"].get("maxOrderNotional", "") == ""  # type: ignore[attr-defined]
        ui.shot("risk-account-limits")
    finally:
        _patch_limits(ui_stack, {"maxOrderNotional": ""}, account="paper")


def test_an_admin_edits_counts_the_cooldown_and_symbols(ui: Watched, ui_stack: UiStack) -> None:
    before = _limits(ui_stack)["limits"]
    assert isinstance(before, dict)
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Risk").click()
    open_orders = ui.page.get_by_label("Max open orders")
    cooldown = ui.page.get_by_label("Loss cooldown", exact=True)
    symbols = ui.page.get_by_label("Allowed symbols")
    try:
        expect(cooldown).to_have_attribute("placeholder", "none")
        open_orders.fill("40")
        cooldown.fill("300")
        symbols.fill("BTC/USDT, ETH/USDT")
        ui.page.get_by_role("button", name="Save limits").click()
        expect(ui.page.get_by_role("status")).to_contain_text("saved 3 limit(s)")
        stored = _limits(ui_stack)["limits"]
        assert isinstance(stored, dict)
        assert stored["maxOpenOrders"] == 40
        assert stored["lossCooldown"] == "300s"
        assert stored["allowedSymbols"] == ["BTC/USDT", "ETH/USDT"]
        # Not a count: refused in the form, nothing sent.
        open_orders.fill("2.5")
        ui.page.get_by_role("button", name="Save limits").click()
        expect(ui.page.get_by_test_id("limits")).to_contain_text("a whole number")
        assert _limits(ui_stack)["limits"]["maxOpenOrders"] == 40  # type: ignore[index]
        ui.shot("risk-limits-edited")
    finally:
        _patch_limits(
            ui_stack,
            {
                "maxOpenOrders": before.get("maxOpenOrders", 0),
                "lossCooldown": before.get("lossCooldown", "0s"),
                "allowedSymbols": before.get("allowedSymbols", []),
            },
        )


def test_a_denial_shows_its_limit_and_the_orders_value(ui: Watched, ui_stack: UiStack) -> None:
    _patch_limits(ui_stack, {"maxOrderNotional": "5000"}, account="paper")
    try:
        ui.log_in(ui_stack.token)
        ui.page.get_by_role("link", name="Trade").click()
        price = _limit_price_below(ui.page)
        _ticket(ui.page, "0.1", price)
        precheck = ui.page.get_by_test_id("precheck")
        expect(precheck).to_contain_text("DENY")
        expect(precheck).to_contain_text(
            re.compile(r"RISK_MAX_NOTIONAL: .+\(limit 5,000; the order would reach [\d,.]+\)")
        )
        ui.shot("trade-denial-figures")
    finally:
        _patch_limits(ui_stack, {"maxOrderNotional": ""}, account="paper")


def test_the_trade_page_names_the_newest_fill(ui: Watched, ui_stack: UiStack) -> None:
    for number, side in enumerate(["SIDE_BUY", "SIDE_SELL"]):
        if number:
            # Fills a second apart: the oldest and the newest read differently.
            ui.page.wait_for_timeout(1100)
        answer = httpx.post(
            f"{ui_stack.url}/v1/orders",
            headers=_headers(ui_stack),
            json={
                "venue": "paper",
                "symbol": "BTC/USDT",
                "side": side,
                "type": "ORDER_TYPE_MARKET",
                "quantity": "0.001",
                "clientOrderId": f"e2e-newest-{number}",
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    fills = httpx.get(
        f"{ui_stack.url}/v1/accounts/paper/fills",
        params={"symbol": "BTC/USDT", "page_size": 500},
        headers=_headers(ui_stack),
        timeout=30,
    ).json()["fills"]

    def shown(fill: dict[str, str]) -> str:
        return fill["time"][:19].replace("T", " ")

    # ListFills: newest first.
    newest, oldest = shown(fills[0]), shown(fills[-1])
    assert newest > oldest
    ui.log_in(ui_stack.token)
    ui.page.get_by_role("link", name="Trade").click()
    expect(ui.page.get_by_test_id("candle-count")).to_contain_text(
        f"{len(fills)} fills", timeout=30_000
    )
    expect(ui.page.locator("p", has_text="last fill")).to_contain_text(f"last fill {newest}")


def test_the_kill_switch_sets_one_account_to_reducing(ui: Watched, ui_stack: UiStack) -> None:
    def paper_state() -> str:
        answer = httpx.get(
            f"{ui_stack.url}/v1/risk/trading-state",
            params={"accountId": "paper"},
            headers=_headers(ui_stack),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        state: str = answer.json()["tradingState"]["state"]
        return state

    try:
        ui.log_in(ui_stack.token)
        _overview_ready(ui.page)
        ui.page.get_by_test_id("kill-switch").click()
        ui.page.get_by_test_id("kill-account").select_option("paper")
        ui.page.get_by_test_id("kill-state-reducing").check()
        ui.page.get_by_test_id("kill-reason").fill("e2e: closing out")
        expect(ui.page.get_by_test_id("kill-confirm")).to_have_text("Reduce only on paper")
        ui.shot("kill-switch-dialog")
        ui.page.get_by_test_id("kill-confirm").click()
        states = ui.page.get_by_test_id("trading-states")
        expect(states.locator("li", has_text="paper")).to_contain_text("REDUCING")
        assert paper_state() == "TRADING_STATE_REDUCING"
        # The global switch is untouched.
        expect(ui.page.get_by_test_id("trading-state")).to_have_text("ACTIVE")
        # Opened again on paper, it offers to resume it.
        ui.page.get_by_test_id("kill-switch").click()
        ui.page.get_by_test_id("kill-account").select_option("paper")
        expect(ui.page.get_by_test_id("kill-confirm")).to_have_text("Resume paper")
        ui.page.get_by_test_id("kill-confirm").click()
        expect(states).to_contain_text("Trading is active on every account.")
        assert paper_state() == "TRADING_STATE_ACTIVE"
    finally:
        httpx.put(
            f"{ui_stack.url}/v1/risk/trading-state",
            headers=_headers(ui_stack),
            json={"state": "TRADING_STATE_ACTIVE", "reason": "e2e cleanup", "accountId": "paper"},
            timeout=30,
        )
