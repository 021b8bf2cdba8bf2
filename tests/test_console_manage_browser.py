"""Projects and keys, budgets and limits, and the audit log in a real browser.

A key created in the page is shown once and works with the official OpenAI SDK; revoking it makes the next
call 401; a budget created in the page refuses the request that would overshoot it; field errors sit beside
their field; destructive actions ask first; CSRF and cross-site POSTs are refused; every change is in the
audit log; a project key looks but cannot change, and sees only its own project.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.test_console_browser import DESKTOP, PHONE, shot
from tests.test_console_playground_browser import admin, no_sideways_scroll, visit
from tests.test_console_requests_browser import sign_in

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow]

MODEL = "openai/gpt-4.1-mini"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("manage"), "simulator: {enabled: true, time_scale: 0}\n"
                       "logging: {flush_interval: 0.2}\n")
    try:
        yield gw
    finally:
        gw.stop()


def client(gw: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


def ask(gw: GatewayProcess, key: str) -> str:
    answer = client(gw, key).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    return answer.choices[0].message.content or ""


def test_keys_created_once_used_rotated_and_revoked(gateway: GatewayProcess, browser: sync_api.Browser) -> None:
    gw = gateway
    v = visit(browser, gw, DESKTOP)
    try:
        page = v.page
        sign_in(page, gw, MASTER_KEY, "/console/keys")
        # A project from the form; a bad id is refused beside the field and the form keeps what was typed.
        page.get_by_text("New project").click()
        page.locator("#p-id").fill("Not OK!")
        page.locator("#p-name").fill("Acme")
        page.get_by_role("button", name="Create project").click()
        page.locator("#err-id").wait_for(timeout=5000)
        assert page.locator("#p-id").get_attribute("aria-invalid") == "true"
        assert page.locator("#p-name").input_value() == "Acme"
        v.errors.clear()
        page.locator("#p-id").fill("acme")
        page.locator("#p-log").select_option("metadata")
        page.locator("#p-regions").fill("atlantis")  # data residency: an unknown name is refused beside the field
        page.get_by_role("button", name="Create project").click()
        page.locator("#err-regions").wait_for(timeout=5000)
        assert "unknown region or jurisdiction 'atlantis'" in page.locator("#err-regions").inner_text()
        v.errors.clear()
        page.locator("#p-regions").fill("eu, uk")
        page.get_by_role("button", name="Create project").click()
        page.wait_for_url("**/console/keys?done=*")
        assert "Project acme created." in page.locator(".done-note").inner_text()
        assert admin(gw, "GET", "/admin/v1/projects/acme")["log_level"] == "metadata"
        assert admin(gw, "GET", "/admin/v1/projects/acme")["regions"] == ["eu", "uk"]
        assert "eu, uk" in page.locator("tr", has_text="Acme").inner_text()
        # Edit it: an overlong name is refused beside the field; then zero data retention goes on.
        page.locator("tr", has_text="Acme").get_by_role("link", name="Edit").click()
        page.get_by_label("Name").fill("x" * 201)
        page.get_by_role("button", name="Save").click()
        page.locator("#err-name").wait_for(timeout=5000)
        v.errors.clear()
        page.get_by_label("Name").fill("Acme")
        page.get_by_label("Zero data retention").select_option("yes")
        assert page.get_by_label("Regions").input_value() == "eu, uk"
        page.get_by_label("Regions").fill("")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url("**/console/keys?done=*")
        edited = admin(gw, "GET", "/admin/v1/projects/acme")
        assert edited["zero_data_retention"] is True and edited["log_level"] == "metadata"
        assert edited["regions"] == []
        # A key: shown once, with a copy button, and it works with the SDK.
        page.get_by_text("New key").click()
        page.locator("#k-project").select_option("acme")
        page.locator("#k-name").fill("backend")
        page.get_by_role("button", name="Create key").click()
        secret = page.locator("#new-key-value").inner_text().strip()
        assert secret.startswith("ik-")
        page.get_by_role("button", name="Copy").wait_for(state="visible", timeout=5000)  # shown by console.js
        shot(page, "keys-created-desktop")
        assert ask(gw, secret)
        page.goto(f"{gw.url}/console/keys")
        assert secret not in page.content()  # never again
        row = page.locator("tr.key-row", has_text="backend")
        kid = row.get_attribute("data-key") or ""
        listed = {k["id"]: k for k in admin(gw, "GET", "/admin/v1/keys?project=acme")["data"]}
        assert kid in listed and listed[kid]["prefix"] in row.inner_text()
        deadline = time.monotonic() + 10
        while "never" in row.locator("td").nth(5).inner_text():  # last use, once the log has the call
            assert time.monotonic() < deadline, row.inner_text()
            time.sleep(0.3)
            page.reload()
        assert re.search(r"\$0\.0\d+", row.locator("td").nth(4).inner_text())  # spend from the rollup
        shot(page, "keys-desktop")
        # Rotate with an overlap: the new key works, the old one still does for the overlap.
        row.get_by_role("link", name="Rotate").click()
        page.wait_for_url(f"**/console/keys/{kid}/rotate")
        page.get_by_label("Overlap").fill("soon")
        page.get_by_role("button", name="Rotate key").click()
        assert "duration" in page.locator(".field-error").inner_text()
        v.errors.clear()
        page.get_by_label("Overlap").fill("1h")
        page.get_by_role("button", name="Rotate key").click()
        rotated = page.locator("#new-key-value").inner_text().strip()
        assert rotated != secret and ask(gw, rotated) and ask(gw, secret)
        # Revoke: asks first; Cancel changes nothing; then the next call is 401.
        page.goto(f"{gw.url}/console/keys")
        new_row = page.locator("tr.key-row", has_text="active").filter(has_text="backend")
        new_id = new_row.get_attribute("data-key") or ""
        new_row.get_by_role("link", name="Revoke").click()
        assert "cannot be undone" in page.locator(".confirm").inner_text()
        shot(page, "confirm-desktop")
        page.get_by_role("link", name="Cancel").click()
        assert ask(gw, rotated)
        page.goto(f"{gw.url}/console/keys/{new_id}/revoke")
        page.get_by_role("button", name="Revoke key").click()
        page.wait_for_url("**/console/keys?done=*")
        with pytest.raises(openai.AuthenticationError):
            ask(gw, rotated)
        # The audit log has every change, with who and what, and never a secret.
        page.goto(f"{gw.url}/console/audit")
        actions = [r.get_attribute("data-action") for r in page.locator("tr.audit-row").all()]
        assert actions[:5] == ["key.revoke", "key.rotate", "key.create", "project.update", "project.create"], actions
        text = page.locator("main").inner_text()
        assert "admin (" in text and "console" in text and secret not in text and rotated not in text
        shot(page, "audit-desktop")
        v.check_local(gw)
    finally:
        v.close()


def test_budget_from_the_page_refuses_an_overshoot(gateway: GatewayProcess, browser: sync_api.Browser) -> None:
    gw = gateway
    admin(gw, "POST", "/admin/v1/projects", {"id": "thrift"})
    key = admin(gw, "POST", "/admin/v1/keys", {"project": "thrift", "name": "thrifty"})["key"]
    ask(gw, key)
    v = visit(browser, gw, DESKTOP)
    try:
        page = v.page
        sign_in(page, gw, MASTER_KEY, "/console/budgets")
        page.get_by_text("New budget").click()
        page.locator("#b-scope").select_option("project")
        page.locator("#b-subject").fill("thrift")
        page.locator("#b-amount").fill("lots")
        page.get_by_role("button", name="Create budget").click()
        page.locator("#err-budget-amount_usd").wait_for(timeout=5000)
        assert page.locator("#b-subject").input_value() == "thrift"
        v.errors.clear()
        page.locator("#b-subject").fill("nobody")
        page.locator("#b-amount").fill("0.000001")
        page.get_by_role("button", name="Create budget").click()
        assert "nobody" in page.locator("#err-budget-subject").inner_text()
        v.errors.clear()
        page.locator("#b-subject").fill("thrift")
        page.get_by_role("button", name="Create budget").click()
        page.wait_for_url("**/console/budgets?done=*")
        budgets = admin(gw, "GET", "/admin/v1/budgets?scope=project&subject=thrift")["data"]
        assert len(budgets) == 1 and budgets[0]["amount_usd"] == "0.000001"
        with pytest.raises(openai.APIStatusError) as refused:
            ask(gw, key)
        assert refused.value.status_code == 402
        row = page.locator(f"tr.budget-row[data-budget='{budgets[0]['id']}']")
        assert "$0.000001" in row.inner_text() and row.locator("meter").count() == 1
        # Edit it: a bad amount stays on the form; a larger one lets the request through, same budget id.
        row.get_by_role("link", name="Edit").click()
        page.get_by_label("Amount (USD)").fill("-3")
        page.get_by_role("button", name="Save").click()
        assert "amount_usd" in page.locator("#err-amount_usd").get_attribute("id")
        v.errors.clear()
        page.get_by_label("Amount (USD)").fill("50")
        page.get_by_label("Mode").select_option("soft")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url("**/console/budgets?done=*")
        edited = admin(gw, "GET", f"/admin/v1/budgets/{budgets[0]['id']}")
        assert edited["amount_usd"] == "50" and edited["mode"] == "soft"
        assert ask(gw, key)
        admin(gw, "PATCH", f"/admin/v1/budgets/{budgets[0]['id']}", {"amount_usd": "0.000001", "mode": "hard"})
        with pytest.raises(openai.APIStatusError):
            ask(gw, key)
        page.reload()
        # The request made under the $50 budget is now more than the whole amount: exhausted, every alert crossed.
        assert "exhausted" in row.inner_text()
        assert row.locator("td").nth(-2).inner_text().startswith("50%, 80%, 90%"), row.inner_text()
        # A rate limit, then delete it after the confirmation page.
        page.get_by_text("New rate limit").click()
        page.locator("#l-scope").select_option("project")
        page.locator("#l-subject").fill("thrift")
        page.locator("#l-rpm").fill("0")
        page.get_by_role("button", name="Create limit").click()
        page.locator("#err-limit-rpm").wait_for(timeout=5000)
        v.errors.clear()
        page.locator("#l-rpm").fill("600")
        page.get_by_role("button", name="Create limit").click()
        page.wait_for_url("**/console/budgets?done=*")
        shot(page, "budgets-desktop")
        limit_id = admin(gw, "GET", "/admin/v1/limits?subject=thrift")["data"][0]["id"]
        page.locator(f"tr.limit-row[data-limit='{limit_id}']").get_by_role("link", name="Delete").click()
        page.get_by_role("button", name="Delete limit").click()
        page.wait_for_url("**/console/budgets?done=*")
        assert admin(gw, "GET", "/admin/v1/limits?subject=thrift")["data"] == []
        page.goto(f"{gw.url}/console/audit")
        actions = [r.get_attribute("data-action") for r in page.locator("tr.audit-row").all()]
        assert actions[:5] == ["limit.delete", "limit.create", "budget.update", "budget.update", "budget.create"], \
            actions
        assert "api" in page.locator("tr.audit-row").nth(2).inner_text()  # the PATCH through the admin API
        # The admin API's own changes are audited too (the project and key made above).
        assert "project.create" in actions and "key.create" in actions
        assert "api" in page.locator("tr.audit-row", has_text="thrifty").first.inner_text()
        v.check_local(gw)
    finally:
        v.close()


def test_csrf_cross_site_and_project_key_refusals(gateway: GatewayProcess, browser: sync_api.Browser) -> None:
    gw = gateway
    admin(gw, "POST", "/admin/v1/projects", {"id": "solo"})
    admin(gw, "POST", "/admin/v1/projects", {"id": "other"})
    solo = admin(gw, "POST", "/admin/v1/keys", {"project": "solo", "name": "solo-key"})
    other = admin(gw, "POST", "/admin/v1/keys", {"project": "other", "name": "other-key"})
    admin(gw, "POST", "/admin/v1/budgets", {"scope": "project", "subject": "other", "amount_usd": 5})
    admin(gw, "POST", "/admin/v1/budgets", {"scope": "key", "subject": solo["id"], "amount_usd": 7})
    v = visit(browser, gw, PHONE)
    try:
        page = v.page
        sign_in(page, gw, MASTER_KEY, "/console/keys")
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
        api = page.context.request
        # No token, a wrong token, another site's Origin: refused, and nothing is created.
        for form, headers in (({"id": "forged"}, {}), ({"id": "forged", "csrf_token": "x" * 40}, {}),
                              ({"id": "forged", "csrf_token": csrf}, {"origin": "https://evil.example"})):
            answer = api.post(f"{gw.url}/console/projects", form=form, headers=headers)
            assert answer.status == 403, (form, headers, answer.status)
        assert not any(p["id"] == "forged" for p in admin(gw, "GET", "/admin/v1/projects")["data"])
        answer = api.post(f"{gw.url}/console/projects", form={"id": "proper", "csrf_token": csrf})
        assert answer.status == 200 and "Project proper created" in answer.text()  # followed the redirect
        no_sideways_scroll(page)
        shot(page, "keys-phone")
        page.context.clear_cookies()
        # A project key: its own project and keys, read only; other projects' items are not shown.
        sign_in(page, gw, solo["key"], "/console/keys")
        body = page.locator("main").inner_text()
        assert "solo-key" in body and "other-key" not in body and "proper" not in body
        assert page.get_by_role("button", name="Create key").count() == 0
        assert page.get_by_role("link", name="Revoke").count() == 0
        no_sideways_scroll(page)
        for path in (f"/console/keys/{other['id']}/revoke", f"/console/keys/{solo['id']}/revoke"):
            response = page.goto(gw.url + path)
            assert response is not None and response.status == 403, path
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
        answer = page.context.request.post(f"{gw.url}/console/keys/{other['id']}/revoke", form={"csrf_token": csrf})
        assert answer.status == 403
        assert admin(gw, "GET", f"/admin/v1/keys/{other['id']}")["revoked_at"] is None
        page.goto(f"{gw.url}/console/budgets")
        body = page.locator("main").inner_text()
        assert "key " + solo["id"] in body and "project other" not in body
        assert page.get_by_role("button", name="Create budget").count() == 0
        no_sideways_scroll(page)
        shot(page, "budgets-phone")
        page.goto(f"{gw.url}/console/audit")
        entries = page.locator("tr.audit-row").all_inner_texts()
        assert entries and all("solo" in e for e in entries) and not any("other" in e for e in entries)
        no_sideways_scroll(page)
        shot(page, "audit-phone")
        response = page.goto(f"{gw.url}/console/audit?cursor=bogus")
        assert response is not None and response.status == 400
    finally:
        v.close()
