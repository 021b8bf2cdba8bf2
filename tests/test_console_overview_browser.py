"""The console's Overview and Spend pages in a real browser: figures, filters, isolation, export, screenshots.

Traffic comes from the official OpenAI SDK under two projects against a gateway on the simulator; the
figures on the pages are checked against the admin API (``/admin/v1/spend``, ``/admin/v1/logs``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from interlock.console.charts import usd
from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.test_console_browser import DESKTOP, PHONE, shot
from tests.test_console_playground_browser import admin, no_sideways_scroll, visit
from tests.test_console_requests_browser import project_keys, sign_in, wait_for_log

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow]

MODEL = "openai/gpt-4.1-mini"
OTHER = "anthropic/claude-haiku-4-5"


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, dict[str, Any]]]:
    gw = start_gateway(tmp_path_factory.mktemp("overview"), "simulator: {enabled: true, time_scale: 0, "
                       "allow_fault_headers: true}\n"
                       "logging: {flush_interval: 0.2, level: metadata}\n")
    try:
        keys = project_keys(gw, "alpha", "beta")
        admin(gw, "POST", "/admin/v1/budgets", {"scope": "project", "subject": "alpha", "amount_usd": 5,
                                                "period": "daily", "mode": "soft"})
        time.sleep(1.5)  # the workers see the new keys and the budget
        alpha = openai.OpenAI(base_url=gw.base_url, api_key=keys["alpha"], max_retries=0, timeout=30)
        beta = openai.OpenAI(base_url=gw.base_url, api_key=keys["beta"], max_retries=0, timeout=30)
        for i, model in enumerate((MODEL, MODEL, OTHER)):
            alpha.chat.completions.create(model=model, messages=[{"role": "user", "content": f"hello {i}"}],
                                          extra_headers={"x-interlock-tags": "team-a"})
        stream = beta.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "from beta"}],
                                              stream=True)
        for _ in stream:
            pass
        with pytest.raises(openai.APIStatusError):
            alpha.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "fails"}],
                                          extra_headers={"x-interlock-simulator-fault": "error=503"})
        wait_for_log(gw, 5)
        yield gw, {"keys": keys}
    finally:
        gw.stop()


def kpi(page: sync_api.Page, name: str) -> str:
    return page.locator(".kpis div", has=page.locator("dt", has_text=re.compile(f"^{re.escape(name)}$"))) \
        .locator("dd").inner_text()


def spend_by(gw: GatewayProcess, group: str) -> dict[str, dict[str, Any]]:
    return {str(r[group]): r for r in admin(gw, "GET", f"/admin/v1/spend?group_by={group}")["data"]}


def test_the_admin_overview_matches_the_admin_api(traffic: tuple[GatewayProcess, dict[str, Any]],
                                                  browser: sync_api.Browser) -> None:
    gw, _ = traffic
    logs = admin(gw, "GET", "/admin/v1/logs?limit=50")["data"]
    total = spend_by(gw, "day")
    (day,) = total.values()
    v = visit(browser, gw, DESKTOP)
    try:
        page = v.page
        sign_in(page, gw, MASTER_KEY, "/console/overview")
        assert page.locator(".kpis").count() == 1, page.content()[:3000]
        assert kpi(page, "Requests") == f"{len(logs):,}" == f"{day['requests']:,}"
        assert kpi(page, "Spend") == usd(day["cost_picousd"])
        assert kpi(page, "Tokens in") == f"{day['input_tokens']:,}"
        assert kpi(page, "Tokens out") == f"{day['output_tokens']:,}"
        errors = sum(1 for r in logs if r["status"] >= 400)
        assert errors == day["errors"] == 1 and kpi(page, "Error rate").startswith("20%")
        assert "ms" in kpi(page, "TTFT p50 / p95") and "tok/s" in kpi(page, "Output speed p50")
        # Top tables: models and projects from the hourly rollup, keys and tags from the daily one.
        by_project = spend_by(gw, "project")
        projects = page.locator("table.top", has=page.locator("caption", has_text="Projects"))
        alpha_row = projects.locator("tbody tr", has_text="alpha")
        assert usd(by_project["alpha"]["cost_picousd"]) in alpha_row.inner_text()
        models = page.locator("table.top", has=page.locator("caption", has_text="Models")).inner_text()
        assert MODEL in models and OTHER in models
        tags = page.locator("table.top", has=page.locator("caption", has_text="Tags")).inner_text()
        assert "team-a" in tags
        health = page.locator("table.health").inner_text()
        assert "simulator" in health and "closed" in health
        assert page.locator("svg.chart").count() == 6
        shot(page, "overview-desktop")
        # The window changes what is read (7 d: 28 bars of 6 hours; 1 h: 2 bars).
        page.get_by_label("Window", exact=True).select_option("7d")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url("**window=7d*")
        assert page.locator("figure.chart").first.locator("g").count() == 28
        assert kpi(page, "Requests") == f"{len(logs):,}"
        page.goto(f"{gw.url}/console/overview?window=1h&project=beta")
        assert page.locator("figure.chart").first.locator("g").count() == 2
        assert kpi(page, "Requests") == "1" and kpi(page, "Spend") == usd(by_project["beta"]["cost_picousd"])
        # A bad parameter: the page, the error next to the field, 400.
        response = page.goto(f"{gw.url}/console/overview?window=2y&project=beta%3Cb%3E")
        assert response is not None and response.status == 400
        assert "window" in page.locator(".error-note").inner_text()
        # What was typed stays in the form (as text, not markup) to be corrected there.
        assert page.get_by_label("Project").input_value() == "beta<b>"
        v.errors.clear()  # chromium logs the 400 page load
        v.check_local(gw)
    finally:
        v.close()


def test_the_admin_spend_page_groups_exports_and_draws_budgets(traffic: tuple[GatewayProcess, dict[str, Any]],
                                                               browser: sync_api.Browser) -> None:
    gw, _ = traffic
    by_model = spend_by(gw, "model")
    by_project = spend_by(gw, "project")
    v = visit(browser, gw, DESKTOP)
    try:
        page = v.page
        sign_in(page, gw, MASTER_KEY, "/console/spend")
        table = page.locator("table.spend")
        header = table.locator("thead").inner_text()
        assert MODEL in header and OTHER in header
        today = table.locator("tbody tr").last.inner_text()
        assert usd(by_model[MODEL]["cost_picousd"]) in today and usd(by_model[OTHER]["cost_picousd"]) in today
        # The budget: a line on the daily chart, and its status.
        assert "project 'alpha' daily budget" in page.locator("figure.chart").inner_text()
        assert "project 'alpha' daily budget" in page.locator("table.budgets").inner_text()
        shot(page, "spend-desktop")
        page.get_by_label("By", exact=True).select_option("project")
        page.get_by_label("Per", exact=True).select_option("month")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url("**group=project*")
        header = table.locator("thead").inner_text()
        assert "alpha" in header and "beta" in header and "Month" in header
        assert usd(by_project["alpha"]["cost_picousd"]) in table.locator("tbody tr").last.inner_text()
        assert page.locator("svg.chart .ref").count() == 0  # a daily budget is not drawn on a monthly chart
        with page.expect_download() as download:
            page.get_by_role("link", name="CSV").click()
        with open(download.value.path()) as exported:
            lines = exported.read().splitlines()
        assert lines[0] == "month,project,cost_usd,saved_usd,requests"
        exported_rows = {line.split(",")[1]: line.split(",") for line in lines[1:]}
        assert set(exported_rows) == {"alpha", "beta"}
        assert round(float(exported_rows["alpha"][2]) * 1e12) == by_project["alpha"]["cost_picousd"]
        assert int(exported_rows["beta"][4]) == by_project["beta"]["requests"]
        response = page.goto(f"{gw.url}/console/spend?from=2026-13-01")
        assert response is not None and response.status == 400
        assert "from" in page.locator(".error-note").inner_text()
        assert page.locator(".field.invalid #f-from").count() == 1
        v.errors.clear()
        v.check_local(gw)
    finally:
        v.close()


def test_a_project_key_sees_its_own_figures_only(traffic: tuple[GatewayProcess, dict[str, Any]],
                                                 browser: sync_api.Browser) -> None:
    gw, ctx = traffic
    by_project = spend_by(gw, "project")
    v = visit(browser, gw, PHONE)
    try:
        page = v.page
        sign_in(page, gw, ctx["keys"]["beta"], "/console/overview")
        assert kpi(page, "Requests") == "1"
        assert kpi(page, "Spend") == usd(by_project["beta"]["cost_picousd"])
        body = page.locator("main").inner_text()
        assert "alpha" not in body and "team-a" not in body
        assert page.locator("table.top", has=page.locator("caption", has_text="Projects")).count() == 0
        assert page.get_by_label("Project").count() == 0
        no_sideways_scroll(page)
        shot(page, "overview-phone")
        response = page.goto(f"{gw.url}/console/overview?project=alpha")
        assert response is not None and response.status == 403
        assert page.get_by_label("Project").input_value() == "alpha"  # the refused value, beside its error
        response = page.goto(f"{gw.url}/console/spend?project=alpha")
        assert response is not None and response.status == 403
        response = page.goto(f"{gw.url}/console/spend/export?project=alpha")
        assert response is not None and response.status == 403
        page.goto(f"{gw.url}/console/spend")
        body = page.locator("main").inner_text()
        assert usd(by_project["beta"]["cost_picousd"]) in body and "alpha" not in body
        assert page.locator("table.budgets").count() == 0  # alpha's budget is not beta's business
        no_sideways_scroll(page)
        shot(page, "spend-phone")
        v.errors.clear()
    finally:
        v.close()
