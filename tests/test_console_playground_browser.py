"""Sign-in and the playground in a real browser (Playwright driving Debian's chromium).

Every request the pages make must go to the gateway (a route handler aborts any other
host, and ``Visit.check_local`` asserts each request's host); screenshots of the sign-in
and playground pages at desktop and phone width go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.test_console_browser import DESKTOP, PHONE, Visit, shot

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow]


def admin(gw: GatewayProcess, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(gw.url + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers={"authorization": f"Bearer {MASTER_KEY}",
                                                         "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("playground"),
                       "simulator: {enabled: true, time_scale: 0}\nlogging: {flush_interval: 0.2}\n")
    try:
        yield gw
    finally:
        gw.stop()


def visit(browser: sync_api.Browser, gw: GatewayProcess, viewport: dict[str, int]) -> Visit:
    """A :class:`Visit` whose context refuses every request to another host."""
    v = Visit(browser, viewport)

    def only_here(route: sync_api.Route) -> None:
        parts = urlsplit(route.request.url)
        if parts.hostname == "127.0.0.1" and parts.port == gw.port:
            route.continue_()
        else:
            route.abort()

    v.context.route("**/*", only_here)
    return v


def sign_in(page: sync_api.Page, gw: GatewayProcess, key: str) -> None:
    page.goto(f"{gw.url}/console/playground")
    page.wait_for_url("**/console/signin?next=/console/playground")
    page.get_by_label("Key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/playground")


def no_sideways_scroll(page: sync_api.Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_side_by_side_run_shows_both_answers_with_costs(gateway: GatewayProcess,
                                                        browser: sync_api.Browser) -> None:
    v = visit(browser, gateway, DESKTOP)
    try:
        page = v.page
        page.goto(f"{gateway.url}/console/signin")
        shot(page, "signin-desktop")
        # A wrong key: the form again, with the error, and no session.
        page.get_by_label("Key").fill("ik-wrong")
        page.get_by_role("button", name="Sign in").click()
        assert "was not accepted" in page.get_by_role("alert").inner_text()
        shot(page, "signin-error-desktop")
        v.errors.clear()  # chromium logs the 401 page load as an error: expected here
        sign_in(page, gateway, MASTER_KEY)
        assert "admin (" in page.locator("header.site .who").inner_text()
        # The key is not in any cookie the page can see, nor in the page.
        assert MASTER_KEY not in page.content()
        assert all(MASTER_KEY not in c["value"] for c in v.context.cookies())
        session = next(c for c in v.context.cookies() if c["name"] == "interlock_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""
        models = page.locator("input[name=model]")
        assert models.nth(0).input_value() == "simulator/openai/gpt-4.1-mini"
        assert models.nth(1).input_value() == "simulator/anthropic/claude-sonnet-4-5"
        page.get_by_label("System prompt").fill("You are terse.")
        page.get_by_label("Max tokens").fill("40")
        page.get_by_role("button", name="Run").click()
        page.wait_for_selector("#pg-results[data-done='2']")
        columns = page.locator("article.pg-col")
        assert columns.count() == 2
        for i, model in enumerate(("simulator/openai/gpt-4.1-mini", "simulator/anthropic/claude-sonnet-4-5")):
            col = columns.nth(i)
            assert col.get_attribute("data-model") == model
            assert col.locator(".pg-answer").inner_text().strip(), model
            assert col.locator("[data-field=status]").inner_text() == "done"
            assert col.locator("[data-field=cost]").inner_text().startswith("$"), model
            assert col.locator("[data-field=ttft]").inner_text().endswith("ms")
            assert "simulator" in col.locator("[data-field='served by']").inner_text()
        # The routing explanation arrives from the session's generation endpoint.
        page.wait_for_function("[...document.querySelectorAll('[data-field=routing]')]"
                               ".every(e => e.textContent.includes('order:'))")
        curl = page.locator("#pg-curl").inner_text()
        assert "$INTERLOCK_API_KEY" in curl and f"{gateway.url}/v1/chat/completions" in curl
        assert '"stream_options"' in curl and MASTER_KEY not in curl
        python = page.locator("#pg-python").inner_text()
        assert f'base_url="{gateway.url}/v1"' in python and "stream=True" in python
        shot(page, "playground-desktop")
        # Invalid tools JSON: an error naming the field, and nothing is sent.
        page.get_by_label("Tools (JSON array, optional)").fill("[{not json")
        sent = len(v.requests)
        page.get_by_role("button", name="Run").click()
        assert "'tools' is not valid JSON" in page.locator("#pg-errors").inner_text()
        assert len(v.requests) == sent
        v.check_local(gateway)
    finally:
        v.close()


def test_non_streamed_run_and_phone_width(gateway: GatewayProcess, browser: sync_api.Browser) -> None:
    v = visit(browser, gateway, PHONE)
    try:
        page = v.page
        page.goto(f"{gateway.url}/console/signin")
        no_sideways_scroll(page)
        shot(page, "signin-phone")
        sign_in(page, gateway, MASTER_KEY)
        page.locator("#pg-model-2").fill("")
        page.get_by_label("Stream the answers").uncheck()
        page.get_by_label("Response format").select_option("json_object")
        page.get_by_role("button", name="Run").click()
        page.wait_for_selector("#pg-results[data-done='1']")
        col = page.locator("article.pg-col").first
        assert col.locator(".pg-answer").inner_text().strip().startswith("{")
        assert col.locator("[data-field=cost]").inner_text().startswith("$")
        no_sideways_scroll(page)
        shot(page, "playground-phone")
        v.check_local(gateway)
    finally:
        v.close()


def test_sign_out_csrf_refusal_and_project_isolation(gateway: GatewayProcess, browser: sync_api.Browser) -> None:
    admin(gateway, "POST", "/admin/v1/projects", {"id": "alpha", "name": "Alpha"})
    key = admin(gateway, "POST", "/admin/v1/keys", {"project": "alpha", "name": "browser"})
    # An admin request whose id the project's browser must not read.
    admin_req = urllib.request.Request(
        f"{gateway.url}/v1/chat/completions", method="POST",
        data=json.dumps({"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
    with urllib.request.urlopen(admin_req, timeout=30) as resp:
        admin_rid = resp.headers["x-interlock-request-id"]
    time.sleep(1.5)  # the poller loads the new key
    v = visit(browser, gateway, DESKTOP)
    try:
        page = v.page
        sign_in(page, gateway, key["key"])
        assert page.locator("header.site .who").inner_text().startswith("alpha (")
        # A request without the CSRF header is refused, naming it.
        refused = page.evaluate("""async () => {
            const r = await fetch('/console/api/chat', {method: 'POST', headers: {'content-type': 'application/json'},
                body: JSON.stringify({model: 'simulator/openai/gpt-4.1-mini', messages: [{role: 'user', content: 'hi'}]})});
            return [r.status, await r.json()];
        }""")
        assert refused[0] == 403 and refused[1]["error"]["param"] == "X-CSRF-Token"
        page.locator("#pg-model-2").fill("")
        page.get_by_role("button", name="Run").click()
        page.wait_for_selector("#pg-results[data-done='1']")
        assert page.locator("[data-field=status]").first.inner_text() == "done"
        # Another project's request reads as unknown; the run spent in alpha.
        other = page.evaluate(f"fetch('/console/api/generation?id={admin_rid}').then(r => r.status)")
        assert other == 404
        v.errors.clear()  # the 403 and 404 above, logged by chromium: expected
        deadline = time.monotonic() + 10
        rows: list[Any] = []
        while time.monotonic() < deadline and not rows:
            rows = admin(gateway, "GET", "/admin/v1/logs?project=alpha")["data"]
            time.sleep(0.2)
        assert rows and all(r["key_id"] == key["id"] for r in rows)
        # Sign out: back to the sign-in page, and the playground asks for a sign-in again.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/console/signin")
        page.goto(f"{gateway.url}/console/playground")
        assert "/console/signin" in page.url
        v.check_local(gateway)
    finally:
        v.close()
