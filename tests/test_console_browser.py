"""The console in a real browser: Playwright driving Debian's chromium against a gateway process.

The gateway runs the simulator (``time_scale: 0``), so a few requests give the
model page live figures. Every request the pages make is recorded and must go to
this gateway (nothing from another host), the browser console must stay free of
errors (a CSP violation is one), and screenshots at desktop and phone width are
saved under ``test-artifacts/screenshots/`` (not committed) for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import CHROMIUM, GatewayProcess, start_gateway

sync_api = pytest.importorskip("playwright.sync_api")

SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed "
                       "(scripts/debian_packages.sh installs it in make test)"),
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("console"), "simulator: {enabled: true, time_scale: 0}\n"
                       "vendors: {simulator: {regions: [eu-central-1]}}\n")
    try:
        client = gw.openai_client()
        for _ in range(3):  # live figures for the model page
            client.chat.completions.create(model="openai/gpt-4.1-mini",
                                           messages=[{"role": "user", "content": "hello"}])
        yield gw
    finally:
        gw.stop()


class Visit:
    """A page at one viewport that records every request it makes and every console error."""

    def __init__(self, browser: sync_api.Browser, viewport: dict[str, int], scheme: str = "light") -> None:
        self.context = browser.new_context(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def close(self) -> None:
        self.context.close()

    def check_local(self, gw: GatewayProcess) -> None:
        assert self.requests, "the page made no request"
        for url in self.requests:
            parts = urlsplit(url)
            assert parts.hostname == "127.0.0.1" and parts.port == gw.port, url
        assert not self.errors, self.errors


def shot(page: sync_api.Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_model_page_shows_prices_and_context(gateway: GatewayProcess, browser: sync_api.Browser) -> None:
    visit = Visit(browser, DESKTOP)
    try:
        page = visit.page
        response = page.goto(f"{gateway.url}/models/openai/gpt-4.1-mini")
        assert response is not None and response.status == 200
        assert "default-src 'self'" in (response.headers.get("content-security-policy") or "")
        routes = page.locator("table.routes").inner_text()
        for figure in ("$0.40", "$1.60", "$0.10"):
            assert figure in routes, figure
        header = page.locator("header.model-head").inner_text()
        assert "1,047,576" in header and "1.05M ctx" in header
        assert page.get_by_role("heading", level=1).inner_text() == "GPT-4.1 mini"
        # The simulator served the requests above: its row has live figures.
        sim_row = page.locator("table.routes tbody tr").first.inner_text()
        assert "Simulator" in sim_row and "ms" in sim_row
        # Where each live route runs (data residency): the simulator was given a region.
        assert "eu-central-1" in sim_row
        # console.js ran under the CSP: the copy buttons are shown.
        assert page.locator("button.copy[data-copy=model-id]").is_visible()
        shot(page, "model-desktop")
        # Keyboard: the first Tab reaches the skip link.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        visit.check_local(gateway)
    finally:
        visit.close()


def test_simulator_box_streams_an_answer_and_prices_it(gateway: GatewayProcess,
                                                       browser: sync_api.Browser) -> None:
    visit = Visit(browser, DESKTOP)
    try:
        page = visit.page
        page.goto(f"{gateway.url}/models/openai/gpt-4.1-mini")
        box = page.locator("#sim-form")
        assert box.is_visible()  # simulate.js ran under the CSP and showed the form
        page.fill("#sim-prompt", "Say hello in a few words <b>not bold</b>")
        page.click("#sim-run")
        page.wait_for_selector("#sim-costs tr")
        assert page.locator("#sim-answer").inner_text().strip()
        assert page.locator("#sim-answer b").count() == 0  # model output is text, never markup
        costs = page.locator("#sim-costs").inner_text()
        assert "OpenAI" in costs and "$0.0" in costs
        assert int(page.locator("#sim-out").inner_text().replace(",", "")) > 0
        assert page.locator("#sim-ttft").inner_text().endswith("ms")
        assert page.locator("#sim-status").inner_text().startswith("Done")
        # A tool: the answer is a call of it.
        page.check("#sim-tool-on")
        assert page.locator("#sim-tool").is_visible()
        page.uncheck("#sim-stream")
        page.fill("#sim-prompt", "What is the weather in Paris?")
        page.click("#sim-run")
        page.wait_for_selector("#sim-calls:not([hidden])")
        assert "get_weather(" in page.locator("#sim-calls-text").inner_text()
        # Invalid JSON in the schema box is reported in the page, and nothing is sent.
        page.check("#sim-schema-on")
        page.fill("#sim-schema", "{not json")
        sent = len(visit.requests)
        page.click("#sim-run")
        page.wait_for_function("document.getElementById('sim-status').textContent.startsWith('Error')")
        assert "schema is not valid JSON" in page.locator("#sim-status").inner_text()
        assert len(visit.requests) == sent
        shot(page, "model-simulator-desktop")
        visit.check_local(gateway)
    finally:
        visit.close()


def test_index_lists_and_filters_by_lab(gateway: GatewayProcess, browser: sync_api.Browser) -> None:
    visit = Visit(browser, DESKTOP)
    try:
        page = visit.page
        page.goto(f"{gateway.url}/models")
        assert page.locator('a[href="/models/openai/gpt-4.1-mini"]').count() == 1
        page.get_by_label("Lab").select_option("anthropic")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url("**/models?*lab=anthropic*")
        labs = page.locator("table.models tbody td[data-label=Lab]").all_inner_texts()
        assert labs and set(labs) == {"anthropic"}
        assert page.locator('a[href="/models/openai/gpt-4.1-mini"]').count() == 0
        # Every column, live figures and vendors included, is in view at 1280 px: no sideways scroll.
        wrap = "document.querySelector('.table-wrap')"
        assert page.evaluate(f"{wrap}.scrollWidth - {wrap}.clientWidth") <= 0
        shot(page, "index-desktop")
        visit.check_local(gateway)
    finally:
        visit.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_fit_a_phone(gateway: GatewayProcess, browser: sync_api.Browser, scheme: str) -> None:
    visit = Visit(browser, PHONE, scheme)
    try:
        page = visit.page
        for name, path in (("model", "/models/openai/gpt-4.1-mini"), ("index", "/models?lab=openai"),
                           ("compare", "/compare?m=openai/gpt-4.1-mini&m=anthropic/claude-sonnet-4-5")):
            page.goto(f"{gateway.url}{path}")
            shot(page, f"{name}-phone-{scheme}")
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at phone width"
        if scheme == "dark":
            page.set_viewport_size(DESKTOP)
            page.goto(f"{gateway.url}/models/openai/gpt-4.1-mini")
            shot(page, "model-desktop-dark")
            page.goto(f"{gateway.url}/compare?m=openai/gpt-4.1-mini&m=anthropic/claude-sonnet-4-5")
            shot(page, "compare-desktop-dark")
        visit.check_local(gateway)
    finally:
        visit.close()
