"""The console's Routing policies page in a real browser: the policies and aliases, the dry run (checked
against ``POST /v1/route/explain``), the what-if replay (checked against the admin API's recorded costs),
edited-policy errors, project isolation, screenshots.

Traffic comes from the official OpenAI SDK against a gateway on the simulator, through an expensive policy;
the replay under a cheaper one must come out cheaper than what was recorded.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.test_console_browser import DESKTOP, PHONE, shot
from tests.test_console_playground_browser import admin, no_sideways_scroll, visit
from tests.test_console_requests_browser import NoRedirect, project_keys, sign_in, wait_for_log

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow]

CONFIG = """simulator: {enabled: true, time_scale: 0}
logging: {flush_interval: 0.2, level: full}
aliases:
  fast: openai/gpt-4.1-nano
policies:
  premium:
    targets: [openai/gpt-4.1, anthropic/claude-sonnet-4-5]
    strategy: priority
  budget:
    targets: [openai/gpt-4.1-nano, {model: openai/gpt-4.1-mini, weight: 2}]
    strategy: cost
  smart:
    strategy: difficulty
    tiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1]}
    difficulty: {strong_share: 0.3}
"""
LOAD_400 = "Failed to load resource: the server responded with a status of 400 (Bad Request)"


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, dict[str, Any]]]:
    gw = start_gateway(tmp_path_factory.mktemp("policies"), CONFIG)
    try:
        keys = project_keys(gw, "alpha", "beta")
        time.sleep(1.5)  # the workers see the new keys
        alpha = openai.OpenAI(base_url=gw.base_url, api_key=keys["alpha"], max_retries=0, timeout=30)
        beta = openai.OpenAI(base_url=gw.base_url, api_key=keys["beta"], max_retries=0, timeout=30)
        ids: dict[str, Any] = {"keys": keys, "alpha": []}
        for i in range(4):
            raw = alpha.chat.completions.with_raw_response.create(
                model="premium", messages=[{"role": "user", "content": f"Write a short note about topic {i}."}])
            ids["alpha"].append(raw.headers["x-interlock-request-id"])
        ids["beta"] = beta.chat.completions.with_raw_response.create(
            model="premium", messages=[{"role": "user", "content": "from beta"}]).headers["x-interlock-request-id"]
        wait_for_log(gw, 5)
        yield gw, ids
    finally:
        gw.stop()


def explain(gw: GatewayProcess, key: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(gw.url + "/v1/route/explain", data=json.dumps(body).encode(), method="POST",
                                 headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
        return answer


def usd(picousd: int) -> str:
    value = picousd / 1e12
    return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


def test_admin_sees_policies_dry_runs_and_replays(traffic: tuple[GatewayProcess, dict[str, Any]],
                                                  browser: sync_api.Browser) -> None:
    gw, ids = traffic
    v = visit(browser, gw, DESKTOP)
    try:
        page = v.page
        sign_in(page, gw, MASTER_KEY, "/console/policies")
        assert page.locator("header.site nav a[aria-current=page]").inner_text() == "Policies"
        policies = page.locator("table.policies tbody tr")
        assert policies.count() == 3
        text = page.locator("table.policies").inner_text()
        for name in ("premium", "budget", "openai/gpt-4.1-nano", "weight 2 (67%)", "anthropic/claude-sonnet-4-5",
                     "simulator/openai/gpt-4.1", "cost", "priority", "smart", "strong_share 30%; each tier by priority"):
            assert name in text, name
        smart = page.locator("table.policies tbody tr", has_text="smart").inner_text()
        assert "weak openai/gpt-4.1-nano" in smart and "strong openai/gpt-4.1" in smart
        assert "fast" in page.locator("table.aliases").inner_text()
        shot(page, "policies-desktop")

        # Dry run: the plan and reasons are the explain endpoint's.
        page.get_by_label("Model, policy or alias").fill("premium")
        page.get_by_label("Max tokens").fill("50000")
        page.get_by_label("tools").check()
        page.get_by_role("button", name="Explain").click()
        page.wait_for_url("**run=dry*")
        expected = explain(gw, MASTER_KEY, {"model": "premium", "max_tokens": 50000, "tools": [
            {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
            "messages": [{"role": "user", "content": "Hello"}]})
        plan = [r.locator("td").nth(1).inner_text().split()[0] for r in page.locator("table.plan tbody tr").all()]
        assert plan == [p["target"] for p in expected["plan"]] == ["simulator/anthropic/claude-sonnet-4-5"]
        filtered = page.locator("table.filtered tbody tr")
        reasons = {c["target"]: c["filtered"] for c in expected["candidates"] if not c["eligible"]}
        assert filtered.count() == len(reasons) == 1
        assert reasons["simulator/openai/gpt-4.1"] in filtered.first.inner_text()
        assert expected["reason"] in page.locator(".result .explanation").inner_text()
        # A recorded request re-planned by its id.
        page.goto(f"{gw.url}/console/policies?" + urlencode({"run": "dry", "rid": ids["alpha"][0]}))
        assert ids["alpha"][0] in page.locator(".result h3").inner_text()
        assert page.locator("table.plan tbody tr").first.inner_text().split()[1] == "simulator/openai/gpt-4.1"

        # What-if replay of the cheaper policy over alpha's requests: cheaper than what was recorded.
        page.goto(f"{gw.url}/console/policies")
        page.get_by_label("Policy", exact=True).select_option("budget")
        page.get_by_label("Project").fill("alpha")
        page.get_by_role("button", name="Replay").click()
        page.wait_for_url("**run=replay*")
        recorded = admin(gw, "GET", "/admin/v1/logs?project=alpha&limit=100")["data"]
        assert len(recorded) == 4
        actual = sum(r["cost_picousd"] for r in recorded)
        shown_actual = page.locator("dd[data-spend=actual]").inner_text()
        shown_replayed = page.locator("dd[data-spend=replayed]").inner_text()
        assert shown_actual == usd(actual)
        assert float(shown_replayed.lstrip("$").replace(",", "")) < actual / 1e12
        result = page.locator(".result").last.inner_text()
        assert "(cheaper)" in result and "over 4 requests of alpha" in result
        models = page.locator("table.shares").first.inner_text()
        assert "openai/gpt-4.1-nano" in models and "4 (100.0%)" in models
        assert "Modelled latency from" in result
        shot(page, "policies-replay-desktop")

        # A bad edited policy: a 400, the error next to the field, the text kept.
        v.errors.clear()
        page.get_by_label("Policy", exact=True).select_option("")
        page.get_by_label("Or an edited policy").fill("targets:\n  - openai/gpt-4.1-nano\nstrategy: cheapest\n")
        with page.expect_navigation() as nav:
            page.get_by_role("button", name="Replay").click()
        assert nav.value is not None and nav.value.status == 400
        error = page.locator("#err-edited")
        assert "policy:3: strategy: expected one of" in error.inner_text()
        assert page.get_by_label("Or an edited policy").get_attribute("aria-describedby") == "err-edited"
        assert "strategy: cheapest" in page.get_by_label("Or an edited policy").input_value()
        v.errors.remove(LOAD_400)
        # A good edited policy replays.
        page.get_by_label("Or an edited policy").fill("targets: [openai/gpt-4.1-mini]\n")
        page.get_by_role("button", name="Replay").click()
        page.wait_for_url("**run=replay*")
        assert "The edited policy" in page.locator(".result h3").last.inner_text()

        # The difficulty policy: alpha's logged prompts are scored, and the strong tier's share is shown.
        page.get_by_label("Policy", exact=True).select_option("smart")
        page.get_by_label("Or an edited policy").fill("")
        page.get_by_role("button", name="Replay").click()
        page.wait_for_url("**run=replay*")
        result = page.locator(".result").last.inner_text()
        assert "Policy smart (difficulty) over 4 requests of alpha" in result and "Strong tier share" in result
        share = page.locator("dd[data-strong-share]").inner_text()
        tiers = re.search(r"Difficulty tiers: (\d+) strong, (\d+) weak", result)
        assert tiers is not None and int(tiers[1]) + int(tiers[2]) == 4
        assert share == f"{100 * int(tiers[1]) / 4:.1f}%"
        shot(page, "policies-replay-difficulty-desktop")
        v.check_local(gw)
    finally:
        v.close()


def test_a_project_key_replays_and_dry_runs_its_own_requests_only(
        traffic: tuple[GatewayProcess, dict[str, Any]], browser: sync_api.Browser) -> None:
    gw, ids = traffic
    v = visit(browser, gw, PHONE)
    try:
        page = v.page
        sign_in(page, gw, ids["keys"]["beta"], "/console/policies")
        assert page.locator("table.policies tbody tr").count() == 3  # policies are gateway-wide
        assert page.get_by_label("Project").count() == 0  # pinned to the key's project
        no_sideways_scroll(page)
        shot(page, "policies-phone")
        base = f"{gw.url}/console/policies?"
        # Another project's requests, by URL: refused, and an unknown id.
        response = page.goto(base + urlencode({"run": "replay", "policy": "budget", "project": "alpha"}))
        assert response is not None and response.status == 403
        assert "alpha" in page.locator("#err-project").inner_text()
        response = page.goto(base + urlencode({"run": "dry", "rid": ids["alpha"][0]}))
        assert response is not None and response.status == 404
        assert "No recorded request" in page.locator("#err-rid").inner_text()
        # Its own: one request of beta.
        response = page.goto(base + urlencode({"run": "dry", "rid": ids["beta"]}))
        assert response is not None and response.status == 200
        response = page.goto(base + urlencode({"run": "replay", "policy": "budget"}))
        assert response is not None and response.status == 200
        assert "over 1 request of beta" in page.locator(".result h3").inner_text()
        # premium's first target answered the traffic: its live figures model the latency.
        page.goto(base + urlencode({"run": "replay", "policy": "premium"}))
        assert "Modelled latency from: live" in page.locator(".result").inner_text()
        page.goto(base + urlencode({"run": "replay", "policy": "budget"}))
        no_sideways_scroll(page)
        shot(page, "policies-replay-phone")
        # Bad input is a 400 with the error next to its field, never a 500.
        for query, field in (({"run": "replay", "policy": "budget", "n": "99999"}, "n"),
                             ({"run": "replay", "policy": "nope"}, "policy"),
                             ({"run": "dry", "model": "nope/x"}, "model"),
                             ({"run": "dry", "model": "budget", "max_tokens": "lots"}, "max_tokens")):
            response = page.goto(base + urlencode(query))
            assert response is not None and response.status == 400, query
            assert page.locator(f"#err-{field}").count() == 1, query
    finally:
        v.close()


def test_signed_out_visitors_are_sent_to_sign_in(traffic: tuple[GatewayProcess, dict[str, Any]]) -> None:
    gw, _ = traffic
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(f"{gw.url}/console/policies?run=replay&policy=budget", timeout=10)
    assert info.value.code == 303 and info.value.headers["location"].startswith("/console/signin?next=")
