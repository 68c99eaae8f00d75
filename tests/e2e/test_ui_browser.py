"""The operator UI in a real browser (Debian's Chromium driven by Playwright) against a live
`streamsense serve` of the shop app with its worker, fed by a producer (ui_deployment.py):
every page loads without a console error or a failed request, every chart draws data, the
overview's counts rise without a reload, the lag chart shows a backlog building while the
worker is stopped and draining once it runs again, and the auth wall holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.live_serve import free_port
from tests.e2e.ui_deployment import API_KEY, AUTH, ROOT, SHOP, Deployment, ui_deployment

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")  # `make test` installs it when missing (make chromium)
PAGES = ("overview", "streams", "decisions", "features", "models")
WAIT_MS = 30_000


class Watcher:
    """Everything that went wrong in a page: console errors, failed or refused requests."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: self._console(m.type, m.text))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda r: self._failed(r.url, r.failure or ""))
        page.on("response", lambda r: self._status(r.status, r.url))

    def _console(self, kind: str, text: str) -> None:
        if kind == "error":
            self.problems.append(f"console: {text}")

    def _failed(self, url: str, failure: str) -> None:
        # A poll still in flight when the test navigates away is cancelled by the browser
        # (ERR_ABORTED): the page's own doing, not a failed request.
        if "ERR_ABORTED" not in failure:
            self.problems.append(f"failed: {url} {failure}")

    def _status(self, status: int, url: str) -> None:
        if status >= 400:
            self.problems.append(f"HTTP {status}: {url}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with ui_deployment(tmp_path_factory.mktemp("ui-shop")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "no /usr/bin/chromium: `make chromium` installs Debian's"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def logged_in(browser: Browser, deployment: Deployment) -> Iterator[tuple[Page, Watcher]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    watcher = Watcher(page)
    page.goto(f"{deployment.url}/ui/overview")
    page.fill("input[name=key]", API_KEY)
    page.click("form.login button")
    page.wait_for_url("**/ui/overview")
    yield page, watcher
    context.close()


def charts_drawn(page: Page) -> None:
    """Waits until every chart of the page drew data, then checks its canvas has pixels."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-chart]')]"
        ".every(e => e.getAttribute('data-state') === 'drawn')",
        timeout=WAIT_MS,
    )
    inked = page.evaluate(
        """() => [...document.querySelectorAll('[data-chart]')].map(e => {
            const canvas = e.querySelector('canvas'), [w, h] = [canvas.width, canvas.height];
            const pixels = canvas.getContext('2d').getImageData(0, 0, w, h).data;
            let inked = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) inked++; }
            return [e.getAttribute('data-chart'), e._plot.data[0].length, inked];
        })"""
    )
    for name, points, pixels in inked:
        assert points > 0 and pixels > 100, f"chart {name}: {points} points, {pixels} pixels"


def test_every_page_loads_and_draws_its_charts(logged_in: tuple[Page, Watcher]) -> None:
    page, watcher = logged_in
    for name in PAGES:
        page.goto(page.url.rsplit("/ui/", 1)[0] + f"/ui/{name}")
        charts_drawn(page)
        page.wait_for_timeout(2_500)  # one htmx refresh of the live part, one chart redraw
        assert page.locator("h1").first.is_visible()
    expected = {"overview": 1, "streams": 1, "decisions": 3}
    for name, count in expected.items():
        page.goto(page.url.rsplit("/ui/", 1)[0] + f"/ui/{name}")
        assert page.locator("[data-chart]").count() == count
        charts_drawn(page)
    assert watcher.problems == []


def test_pages_say_what_an_app_does_not_have(logged_in: tuple[Page, Watcher]) -> None:
    page, watcher = logged_in
    base = page.url.rsplit("/ui/", 1)[0]
    page.goto(f"{base}/ui/models")
    assert "no monitoring sink" in page.content()
    assert "No model registered" in page.content()
    page.goto(f"{base}/ui/features?view=shop.user&key=u3")
    assert page.locator("table.vector td", has_text="orders_1h").count() == 1
    assert watcher.problems == []


def test_overview_counts_rise_without_a_reload(logged_in: tuple[Page, Watcher]) -> None:
    page, watcher = logged_in
    first = _number(page.inner_text("#produced"))
    page.evaluate("() => { window.notReloaded = true; }")
    page.wait_for_function(
        f"() => Number(document.querySelector('#produced').innerText.replace(/,/g, '')) > {first}",
        timeout=WAIT_MS,
    )
    assert page.evaluate("() => window.notReloaded") is True
    assert watcher.problems == []


def test_the_auth_wall_holds(browser: Browser, deployment: Deployment) -> None:
    url = deployment.url
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/ui/overview").headers["location"].startswith("/ui/login")
        for path in ("/ui/overview/live", "/ui/api/chart/throughput", "/ui/decisions/live"):
            refused = client.get(path)
            assert refused.status_code == 401 and "events" not in refused.text, path
        assert client.post("/ui/actions/reset-breaker", data={"confirm": "yes"}).status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert client.get("/ui/api/chart/throughput", headers=wrong).status_code == 401
        keyed = client.get("/ui/overview", headers=AUTH)
        assert keyed.status_code == 200 and "events produced" in keyed.text
        forged = {"breaker": "light-model", "confirm": "yes", "csrf": "0" * 64}
        assert (
            client.post("/ui/actions/reset-breaker", data=forged, headers=AUTH).status_code == 403
        )
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/ui/decisions")
    assert "/ui/login" in page.url and "decisions seen" not in page.content()
    page.fill("input[name=key]", "not-the-key")
    page.click("form.login button")
    assert "That is not the key" in page.content()
    page.fill("input[name=key]", API_KEY)
    page.click("form.login button")
    page.wait_for_url("**/ui/decisions")
    assert "decisions seen" in page.content()
    (cookie,) = [c for c in context.cookies() if c["name"] == "streamsense_ui"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    context.close()


def test_a_confirmed_action_is_done_and_logged(
    logged_in: tuple[Page, Watcher], deployment: Deployment
) -> None:
    page, watcher = logged_in
    base = page.url.rsplit("/ui/", 1)[0]
    page.goto(f"{base}/ui/decisions")
    page.locator("a.action", has_text="reset").first.click()
    assert "/ui/confirm/reset-breaker" in page.url
    page.check("input[name=confirm]")
    page.click("button.danger")
    assert "reset to closed" in page.inner_text("p.ok")
    assert "UI action reset-breaker by session" in (deployment.state_dir / "serve.log").read_text()
    assert watcher.problems == []


def test_lag_chart_shows_a_backlog_building_then_draining(
    logged_in: tuple[Page, Watcher], deployment: Deployment
) -> None:
    page, watcher = logged_in
    page.goto(page.url.rsplit("/ui/", 1)[0] + "/ui/streams")
    charts_drawn(page)
    newest_lag = "() => { const d = document.querySelector('[data-chart=lag]')._plot.data;" \
        " return d.slice(1).reduce((sum, s) => sum + (s[s.length - 1] || 0), 0); }"  # fmt: skip
    deployment.pause_worker()
    try:
        page.wait_for_function(f"() => ({newest_lag})() >= 40", timeout=WAIT_MS)
        peak = _peak(page, newest_lag)
    finally:
        deployment.resume_worker()
    page.wait_for_function(f"() => ({newest_lag})() <= {peak / 4}", timeout=60_000)
    assert watcher.problems == [], deployment.logs()


def _peak(page: Page, newest_lag: str) -> float:
    page.wait_for_timeout(3_000)  # the backlog keeps growing while the worker is stopped
    value: Any = page.evaluate(newest_lag)
    return float(value)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_streamsense_ui_serves_a_running_deployment_alone(deployment: Deployment) -> None:
    """`streamsense ui APP --state-dir D`: the same pages from another process."""
    port = free_port()
    command = [sys.executable, "-m", "streamsense", "ui", SHOP, "--port", str(port),
               "--state-dir", str(deployment.state_dir)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "STREAMSENSE_API_KEY": API_KEY}
    log = deployment.state_dir / "ui-alone.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        page = _first_answer(f"{url}/ui/streams", process, log)
        assert page.status_code == 200 and "shop.orders" in page.text
        assert httpx.get(f"{url}/ui/overview", timeout=10).status_code == 303  # no key: login
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _first_answer(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 120
    while True:
        try:
            return httpx.get(url, headers=AUTH, timeout=10)
        except httpx.TransportError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
