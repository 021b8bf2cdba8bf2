"""Config reload without a restart: ``POST /admin/v1/reload`` and ``SIGHUP`` swap vendors, aliases and
policies; a bad file is refused with file, line and key, and the running config keeps serving."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.test_governance_gateway import call

BASE = "simulator: {enabled: true, time_scale: 0}\n"
FIRST = BASE + """aliases:
  quick: openai/gpt-4.1-mini
policies:
  support:
    targets: [openai/gpt-4.1-mini]
"""
SECOND = BASE + """aliases:
  smart: anthropic/claude-sonnet-4-5
policies:
  support:
    targets: [anthropic/claude-haiku-4-5]
  triage:
    targets: [openai/gpt-4.1-nano]
logging: {level: full}
"""
#: A policy whose strategy is unknown: refused at load, as at start-up.
BAD = BASE + """policies:
  support:
    targets: [openai/gpt-4.1-mini]
    strategy: quickest
"""


def ask(gw: GatewayProcess, model: str) -> str:
    """The model that answered ``model``, or raises the SDK's error."""
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    return client.chat.completions.create(model=model, max_tokens=5,
                                          messages=[{"role": "user", "content": "hi"}]).model


def test_the_admin_api_reloads_and_a_bad_file_changes_nothing(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, FIRST)
    try:
        assert "gpt-4.1-mini" in ask(gw, "support") and "gpt-4.1-mini" in ask(gw, "quick")
        (tmp_path / "interlock.yaml").write_text(SECOND)
        status, _, body = call(gw, "POST", "/admin/v1/reload")
        assert status == 200, body
        assert body["policies"] == ["support", "triage"] and body["aliases"] == 1
        assert body["restart_needed_for"] == ["logging"]  # changed, but only a restart applies it
        assert "haiku" in ask(gw, "support") and "nano" in ask(gw, "triage") and "sonnet" in ask(gw, "smart")
        with pytest.raises(openai.NotFoundError):
            ask(gw, "quick")  # the alias is gone
        # A bad file: 400 naming file, line and key; the running config stays.
        (tmp_path / "interlock.yaml").write_text(BAD)
        status, _, err = call(gw, "POST", "/admin/v1/reload")
        assert status == 400 and err["error"]["code"] == "invalid_config", err
        assert "interlock.yaml:5" in err["error"]["message"] and "strategy" in err["error"]["message"]
        assert "haiku" in ask(gw, "support") and "nano" in ask(gw, "triage")
        # Only the admin key reloads.
        call(gw, "POST", "/admin/v1/projects", {"id": "p"})
        _, _, key = call(gw, "POST", "/admin/v1/keys", {"project": "p"})
        time.sleep(0.6)
        assert call(gw, "POST", "/admin/v1/reload", key=key["key"])[0] == 403
        assert "Traceback" not in gw.output()
    finally:
        gw.stop()


def test_sighup_reloads_every_worker(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, FIRST, workers=2)
    try:
        (tmp_path / "interlock.yaml").write_text(SECOND)
        gw.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        answers: list[str] = []
        while time.monotonic() < deadline:
            answers = [ask(gw, "support") for _ in range(12)]  # new connections: both workers answer
            if all("haiku" in a for a in answers):
                break
            time.sleep(0.2)
        assert all("haiku" in a for a in answers), answers
        # A bad file on SIGHUP: logged with its place, every worker keeps the config it has.
        (tmp_path / "interlock.yaml").write_text(BAD)
        gw.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert all("haiku" in ask(gw, "support") for _ in range(12))
        assert gw.output().count("config reload refused") == 2 and "interlock.yaml:5" in gw.output()
    finally:
        gw.stop()


def test_without_a_config_file_there_is_nothing_to_reload(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, None)
    try:
        status, _, err = call(gw, "POST", "/admin/v1/reload")
        assert status == 400 and "--config" in err["error"]["message"]
    finally:
        gw.stop()


def test_a_reload_swaps_the_guardrail_floor_and_the_project_entries(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, BASE + "guardrails: {pii: {action: monitor}}\n")
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)

    def mail(headers: dict[str, str] | None = None) -> tuple[int, str]:
        """Status and x-interlock-guardrails of a request carrying an e-mail address."""
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="openai/gpt-4.1-mini", max_tokens=5, extra_headers=headers,
                messages=[{"role": "user", "content": "write to jane.doe@example.com"}])
            return raw.status_code, raw.headers.get("x-interlock-guardrails", "")
        except openai.BadRequestError as err:
            assert err.code == "content_blocked", err
            return 400, ""

    try:
        call(gw, "POST", "/admin/v1/projects", {"id": "billing"})
        billing = {"x-interlock-project": "billing"}
        time.sleep(0.6)
        assert mail() == (200, "pii=monitor") and mail(billing) == (200, "pii=monitor")
        # The floor tightens to redact and the billing project gets its own, stricter entry.
        (tmp_path / "interlock.yaml").write_text(BASE + "guardrails:\n  pii: {action: redact}\n"
                                                 "  projects: {billing: {pii: {action: block}}}\n")
        status, _, body = call(gw, "POST", "/admin/v1/reload")
        assert status == 200 and body["restart_needed_for"] == [], body
        assert mail() == (200, "pii=redact") and mail(billing) == (400, "")
        status, _, project = call(gw, "GET", "/admin/v1/projects/billing")
        assert project["effective_guardrails"]["pii"]["action"] == "block", project
        # A looser project entry than the floor is refused like at start-up: nothing changes.
        (tmp_path / "interlock.yaml").write_text(BASE + "guardrails:\n  pii: {action: redact}\n"
                                                 "  projects: {billing: {pii: {action: monitor}}}\n")
        status, _, err = call(gw, "POST", "/admin/v1/reload")
        assert status == 400 and "looser" in err["error"]["message"], err
        assert mail() == (200, "pii=redact") and mail(billing) == (400, "")
        # Off again: nothing is scanned.
        (tmp_path / "interlock.yaml").write_text(BASE)
        assert call(gw, "POST", "/admin/v1/reload")[0] == 200
        assert mail() == (200, "") and mail(billing) == (200, "")
        assert "Traceback" not in gw.output()
    finally:
        gw.stop()
