"""The console's request log in a real browser: filters, drill-down, export, project isolation, screenshots.

Traffic comes from the official OpenAI SDK against a gateway on the simulator; figures on the pages are
checked against the admin API's record of the same request.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.test_console_browser import DESKTOP, PHONE, shot
from tests.test_console_playground_browser import admin, no_sideways_scroll, visit

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow]

MODEL = "openai/gpt-4.1-mini"
OTHER = "anthropic/claude-haiku-4-5"


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, dict[str, Any]]]:
    gw = start_gateway(tmp_path_factory.mktemp("requests"), "simulator: {enabled: true, time_scale: 0, "
                       "allow_fault_headers: true}\n"
                       "logging: {flush_interval: 0.2, level: full}\n"
                       "guardrails: {pii: {action: monitor}}\n")
    try:
        keys = project_keys(gw, "alpha", "beta")
        time.sleep(1.5)  # the workers see the new keys
        ids: dict[str, Any] = {"keys": keys}
        alpha = openai.OpenAI(base_url=gw.base_url, api_key=keys["alpha"], max_retries=0, timeout=30)
        beta = openai.OpenAI(base_url=gw.base_url, api_key=keys["beta"], max_retries=0, timeout=30)
        ids["alpha"] = [alpha.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": f"hello {i}"}]).headers["x-interlock-request-id"]
            for i, model in enumerate((MODEL, MODEL, OTHER))]
        ids["beta"] = beta.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "from beta: mail me at b.c@example.com"}]
        ).headers["x-interlock-request-id"]
        with pytest.raises(openai.APIStatusError):
            alpha.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "fails"}],
                                          extra_headers={"x-interlock-simulator-fault": "error=503"})
        wait_for_log(gw, 5)
        yield gw, ids
    finally:
        gw.stop()


def project_keys(gw: GatewayProcess, *projects: str) -> dict[str, str]:
    """Creates each project with one key (through the admin API); returns the keys by project."""
    keys = {}
    for project in projects:
        admin(gw, "POST", "/admin/v1/projects", {"id": project})
        keys[project] = admin(gw, "POST", "/admin/v1/keys", {"project": project})["key"]
    return keys


def wait_for_log(gw: GatewayProcess, count: int) -> None:
    """Until the request log holds at least ``count`` records (the writer flushes in the background)."""
    deadline = time.monotonic() + 10
    while len(admin(gw, "GET", f"/admin/v1/logs?limit={count}")["data"]) < count:
        assert time.monotonic() < deadline, "the log did not receive the traffic"
        time.sleep(0.2)


def sign_in(page: sync_api.Page, gw: GatewayProcess, key: str, path: str = "/console/requests") -> None:
    page.goto(f"{gw.url}{path}")
    page.wait_for_url("**/console/signin**")
    page.get_by_label("Key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{path}")


def test_the_admin_filters_drills_down_and_exports(traffic: tuple[GatewayProcess, dict[str, Any]],
                                                   browser: sync_api.Browser) -> None:
    gw, ids = traffic
    v = visit(browser, gw, DESKTOP)
    try:
        page = v.page
        sign_in(page, gw, MASTER_KEY)
        rows = page.locator("table.requests tbody tr")
        assert rows.count() == 5, page.content()[:3000]
        assert rows.first.locator("td").nth(4).inner_text().startswith("502")  # newest first: the failure
        shot(page, "requests-desktop")
        # Filters narrow the list (and are kept in the form).
        page.get_by_label("From").fill("-1h")
        page.get_by_label("Model").fill(OTHER)
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**model=*")
        assert rows.count() == 1 and OTHER in rows.first.inner_text()
        page.get_by_label("Model").fill("")
        page.get_by_label("Status").select_option("error")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**status=error*")
        assert rows.count() == 1
        # By the strongest guardrail action: beta's e-mail address was detected (pii monitors).
        page.get_by_label("Status").select_option("")
        page.get_by_label("Guardrail action").select_option("monitor")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**guardrail=monitor*")
        assert rows.count() == 1 and ids["beta"][:20] in rows.first.inner_text(), page.content()[:3000]
        assert page.get_by_label("Guardrail action").input_value() == "monitor"
        page.get_by_label("Guardrail action").select_option("block")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**guardrail=block*")
        assert rows.count() == 0
        # A bad filter is shown next to the form, not a traceback.
        page.goto(f"{gw.url}/console/requests?min_cost=-1")
        assert "min_cost" in page.locator(".error-note").inner_text()
        page.goto(f"{gw.url}/console/requests?min_cost=1&max_cost=0.5")
        assert "max_cost" in page.locator(".error-note").inner_text()
        v.errors.remove("Failed to load resource: the server responded with a status of 400 (Bad Request)")
        v.errors.remove("Failed to load resource: the server responded with a status of 400 (Bad Request)")
        # Drill-down: the figures are the admin API's.
        rid = ids["alpha"][0]
        record = admin(gw, "GET", f"/admin/v1/logs/{rid}")
        page.goto(f"{gw.url}/console/requests/{rid}")
        assert page.locator("main").count() == 1, page.content()[:2000]
        body = page.locator("main").inner_text()
        assert rid in body and "Timeline" in body and "received" in body and "finished" in body
        assert f"{record['input_tokens']:,}" in body and f"{record['output_tokens']:,}" in body
        assert "attempt 1: simulator" in body
        assert record["client_ip"] == "127.0.0.1" and "Client 127.0.0.1" in body
        assert record["explanation"][:40] in body
        assert "hello 0" in body  # log level full keeps the content
        shot(page, "request-detail-desktop")
        # Export: the filtered rows as CSV.
        with page.expect_download() as download:
            page.goto(f"{gw.url}/console/requests")
            page.get_by_role("link", name="CSV").click()
        with open(download.value.path()) as exported:
            text = exported.read()
        assert text.count("\n") == 6 and ids["beta"] in text  # a header and five rows
        v.check_local(gw)
    finally:
        v.close()


def test_a_project_key_sees_its_own_requests_only(traffic: tuple[GatewayProcess, dict[str, Any]],
                                                  browser: sync_api.Browser) -> None:
    gw, ids = traffic
    v = visit(browser, gw, PHONE)
    try:
        page = v.page
        sign_in(page, gw, ids["keys"]["beta"])
        rows = page.locator("table.requests tbody tr")
        assert rows.count() == 1 and ids["beta"] in rows.first.inner_text()
        assert page.get_by_label("Project").count() == 0  # the filter is pinned to the key's project
        no_sideways_scroll(page)
        shot(page, "requests-phone")
        # Another project's request, by URL: unknown; naming another project: refused.
        response = page.goto(f"{gw.url}/console/requests/{ids['alpha'][0]}")
        assert response is not None and response.status == 404
        response = page.goto(f"{gw.url}/console/requests?project=alpha")
        assert response is not None and response.status == 403
        response = page.goto(f"{gw.url}/console/requests/export?format=jsonl&project=alpha")
        assert response is not None and response.status == 403
        response = page.goto(f"{gw.url}/console/requests/{ids['beta']}")
        assert response is not None and response.status == 200
        no_sideways_scroll(page)
        shot(page, "request-detail-phone")
    finally:
        v.close()


def test_signed_out_visitors_are_sent_to_sign_in(traffic: tuple[GatewayProcess, dict[str, Any]]) -> None:
    gw, ids = traffic
    req = urllib.request.Request(f"{gw.url}/console/requests/{ids['beta']}")
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(req, timeout=10)
    assert info.value.code == 303 and "/console/signin?next=" in info.value.headers["location"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("failover"), """
simulator: {enabled: true, time_scale: 0, faults: {"openai/gpt-4.1-nano": "error=503"}}
logging: {flush_interval: 0.2, level: metadata}
policies:
  support-bot:
    targets: [simulator/openai/gpt-4.1-nano, simulator/openai/gpt-4.1-mini]
""")
    try:
        yield gw
    finally:
        gw.stop()


def test_failover_drill_down_and_live_tail(failover: GatewayProcess, browser: sync_api.Browser) -> None:
    gw = failover
    admin(gw, "POST", "/admin/v1/projects", {"id": "gamma"})
    admin(gw, "POST", "/admin/v1/projects", {"id": "delta"})
    gamma = admin(gw, "POST", "/admin/v1/keys", {"project": "gamma"})["key"]
    delta = admin(gw, "POST", "/admin/v1/keys", {"project": "delta"})["key"]
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=gamma, max_retries=0, timeout=30)
    rid = sdk.chat.completions.with_raw_response.create(
        model="support-bot", messages=[{"role": "user", "content": "help"}]).headers["x-interlock-request-id"]
    wait_for_log(gw, 1)
    record = admin(gw, "GET", f"/admin/v1/logs/{rid}")
    attempts = record["attempts"]
    assert len(attempts) >= 2 and attempts[0]["model"] == "openai/gpt-4.1-nano"
    assert attempts[-1]["model"] == "openai/gpt-4.1-mini"
    v = visit(browser, gw, DESKTOP)
    watcher = visit(browser, gw, PHONE)
    try:
        page = v.page
        sign_in(page, gw, MASTER_KEY, f"/console/requests/{rid}")
        body = page.locator("main").inner_text()
        # The timeline has both attempts with their outcome, status and latency; the routing explanation and
        # the cost breakdown are the log record's.
        assert "attempt 1: simulator / openai/gpt-4.1-nano" in body and "503" in body
        assert f"attempt {len(attempts)}: simulator / openai/gpt-4.1-mini" in body
        assert record["explanation"][:40] in body and "support-bot" in body
        assert f"{record['input_tokens']:,}" in body and f"{record['output_tokens']:,}" in body
        # The cost of each part, at the answering route's catalog price, adds up to what was charged.
        parts = {r.split("\t")[0]: r.split("\t") for r in page.locator("table.cost-parts tbody tr").all_inner_texts()}
        assert parts["input"][1] == f"{record['input_tokens']:,}" and parts["input"][2].startswith("$")
        assert parts["output"][1] == f"{record['output_tokens']:,}" and parts["output"][2].startswith("$")
        assert "current price" not in body  # the parts sum to the recorded cost
        shot(page, "request-failover-desktop")
        # Live tail: the admin's page and a project key's page both follow; each sees what it may.
        page.goto(f"{gw.url}/console/requests")
        page.get_by_role("button", name="Follow live").click()
        sign_in(watcher.page, gw, delta, "/console/requests")
        watcher.page.get_by_role("button", name="Follow live").click()
        time.sleep(1.2)  # both streams are open before the traffic
        other = openai.OpenAI(base_url=gw.base_url, api_key=delta, max_retries=0, timeout=30)
        fresh = [sdk.chat.completions.with_raw_response.create(
            model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "live"}]).headers[
            "x-interlock-request-id"],
            other.chat.completions.with_raw_response.create(
            model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "live"}]).headers[
            "x-interlock-request-id"]]
        page.locator("tr.fresh").nth(1).wait_for(timeout=15000)
        assert all(r in page.locator("#request-rows").inner_text() for r in fresh)
        assert "2 new requests" in page.locator("#tail-status").inner_text()
        watcher.page.locator("tr.fresh").first.wait_for(timeout=15000)
        time.sleep(1.5)  # a gamma row would have arrived by now
        seen = watcher.page.locator("#request-rows").inner_text()
        assert fresh[1] in seen and fresh[0] not in seen and rid not in seen
        no_sideways_scroll(watcher.page)
        shot(page, "requests-live-desktop")
        page.get_by_role("button", name="Pause").click()
        assert page.locator("#tail-status").inner_text() == "Paused."
        v.check_local(gw)
    finally:
        watcher.close()
        v.close()
