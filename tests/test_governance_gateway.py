"""Governance through a real gateway process: the admin API, 402/429 in both inbound formats, key hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway

pytestmark = pytest.mark.slow
MODEL = "openai/gpt-4.1-mini"


def call(gw: GatewayProcess, method: str, path: str, body: Any = None, key: str = MASTER_KEY,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(gw.url + path, data=data, method=method,
                                 headers={"authorization": f"Bearer {key}", "content-type": "application/json",
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(err.read() or b"null")


def chat(gw: GatewayProcess, key: str, max_tokens: int = 50, **headers: str) -> tuple[int, dict[str, str], Any]:
    return call(gw, "POST", "/v1/chat/completions", {"model": MODEL, "max_tokens": max_tokens,
                                                     "messages": [{"role": "user", "content": "hi"}]}, key, headers)


def messages(gw: GatewayProcess, key: str, max_tokens: int = 50) -> tuple[int, dict[str, str], Any]:
    return call(gw, "POST", "/v1/messages", {"model": MODEL, "max_tokens": max_tokens,
                                             "messages": [{"role": "user", "content": "hi"}]}, key)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("gov")
    gw = start_gateway(home, "simulator: {enabled: true, time_scale: 0}\nlogging: {flush_interval: 0.2}\n")
    yield gw
    gw.stop()


def test_admin_api_crud_and_errors(gw: GatewayProcess) -> None:
    status, _, project = call(gw, "POST", "/admin/v1/projects", {"id": "crud", "name": "CRUD"})
    assert status == 201 and project["id"] == "crud"
    assert call(gw, "POST", "/admin/v1/projects", {"id": "crud"})[0] == 409
    status, _, err = call(gw, "POST", "/admin/v1/projects", {"id": "Bad Id"})
    assert status == 400 and err["error"]["param"] == "id"
    status, _, err = call(gw, "POST", "/admin/v1/projects", {"id": "x", "colour": "red"})
    assert status == 400 and err["error"]["param"] == "colour"
    status, _, err = call(gw, "POST", "/admin/v1/budgets", {"scope": "project", "subject": "crud",
                                                            "amount_usd": -1})
    assert status == 400 and err["error"]["param"] == "amount_usd"
    status, _, err = call(gw, "POST", "/admin/v1/budgets", {"scope": "project", "subject": "nope",
                                                            "amount_usd": 1})
    assert status == 404 and err["error"]["param"] == "subject"
    assert call(gw, "GET", "/admin/v1/keys/key_missing")[0] == 404
    status, _, key = call(gw, "POST", "/admin/v1/keys", {"project": "crud", "name": "ci"})
    assert status == 201 and key["key"].startswith("ik-")
    status, _, listing = call(gw, "GET", "/admin/v1/keys?project=crud")
    assert [k["id"] for k in listing["data"]] == [key["id"]] and "key" not in listing["data"][0]
    assert "digest" not in json.dumps(listing)
    status, _, err = call(gw, "GET", "/admin/v1/projects", key=key["key"])
    assert status == 403 and err["error"]["type"] == "permission_error"
    status, _, doc = call(gw, "GET", "/admin/v1/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0" and "/admin/v1/keys/{key_id}/rotate" in doc["paths"]
    status, _, patched = call(gw, "PATCH", "/admin/v1/projects/crud", {"log_level": "off"})
    assert status == 200 and patched["log_level"] == "off"
    assert call(gw, "DELETE", "/admin/v1/projects/crud")[0] == 200
    assert chat(gw, key["key"])[0] == 401


def test_budget_refusal_is_402_in_openai_and_anthropic_shapes(gw: GatewayProcess) -> None:
    call(gw, "POST", "/admin/v1/projects", {"id": "tight"})
    status, _, key = call(gw, "POST", "/admin/v1/keys", {"project": "tight", "budget": {"amount_usd": "0.0001",
                                                                                       "period": "daily"}})
    assert status == 201, key
    status, headers, body = chat(gw, key["key"], max_tokens=1000)  # worst case 1.6 mUSD > 0.1 mUSD
    assert status == 402
    assert body["error"]["code"] == "budget_exceeded" and "key" in body["error"]["message"]
    assert headers["x-interlock-budget-limit-usd"] == "0.000100"
    assert float(headers["x-interlock-budget-remaining-usd"]) == pytest.approx(0.0001)
    status, headers, body = messages(gw, key["key"], max_tokens=1000)
    assert status == 402 and body["type"] == "error" and body["error"]["type"] == "billing_error"  # Anthropic's 402
    assert "x-interlock-budget-remaining-usd" in headers
    status, headers, body = chat(gw, key["key"], max_tokens=5)
    assert status == 200, body


def test_rate_limit_is_429_with_openai_headers_in_both_shapes(gw: GatewayProcess) -> None:
    call(gw, "POST", "/admin/v1/projects", {"id": "limited"})
    _, _, key = call(gw, "POST", "/admin/v1/keys", {"project": "limited", "limits": {"rpm": 2}})
    if time.time() % 60 > 57:  # the four requests below take well under a second: keep them in one minute
        time.sleep(61 - time.time() % 60)
    first = chat(gw, key["key"])
    assert first[0] == 200 and first[1]["x-ratelimit-limit-requests"] == "2"
    assert first[1]["x-ratelimit-remaining-requests"] == "1"
    assert chat(gw, key["key"])[0] == 200
    status, headers, body = chat(gw, key["key"])
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining-requests"] == "0"
    status, headers, body = messages(gw, key["key"])
    assert status == 429 and body["error"]["type"] == "rate_limit_error" and "retry-after" in headers


def test_key_never_reaches_logs_responses_or_the_request_log(gw: GatewayProcess) -> None:
    call(gw, "POST", "/admin/v1/projects", {"id": "hygiene"})
    _, _, key = call(gw, "POST", "/admin/v1/keys", {"project": "hygiene"})
    status, headers, body = chat(gw, key["key"], **{"x-interlock-tags": "t1"})
    assert status == 200
    assert key["key"] not in json.dumps(body) + json.dumps(headers)
    time.sleep(0.6)
    _, _, logs = call(gw, "GET", "/admin/v1/logs?project=hygiene")
    record = logs["data"][0]
    assert record["key_id"] == key["id"] and record["project"] == "hygiene" and record["tags"] == ["t1"]
    import hashlib
    import hmac
    secret = (gw.home / "state" / "secret").read_bytes()
    digest = hmac.new(secret, key["key"].encode(), hashlib.sha256).hexdigest()
    text = json.dumps(logs) + gw.output()
    assert key["key"] not in text and digest not in text and key["key"][12:] not in text
    # Revocation reaches the worker at once.
    assert call(gw, "POST", f"/admin/v1/keys/{key['id']}/revoke")[0] == 200
    status, _, body = chat(gw, key["key"])
    assert status == 401 and key["key"] not in json.dumps(body)


def test_cli_creates_keys_a_running_gateway_accepts_within_a_second(gw: GatewayProcess) -> None:
    env = clean_env(INTERLOCK_HOME=str(gw.home / "state"))

    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "interlock", *args], capture_output=True, text=True,
                              env=env, timeout=60, cwd=gw.home)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    cli("projects", "create", "cli-proj", "--budget", "5/month")
    assert "cli-proj" in cli("projects", "list")
    out = cli("keys", "create", "--project", "cli-proj", "--rpm", "60", "--budget", "1/day", "--expires", "30d")
    plaintext = next(w for w in out.split() if w.startswith("ik-"))
    deadline = time.monotonic() + 1.5
    while chat(gw, plaintext)[0] != 200:
        assert time.monotonic() < deadline, "the new key did not reach the gateway within a second"
        time.sleep(0.1)
    listing = cli("keys", "list", "--project", "cli-proj")
    assert plaintext[:12] in listing and plaintext not in listing
    key_id = next(w for w in listing.split() if w.startswith("key_"))
    rotated = cli("keys", "rotate", key_id, "--overlap", "0s")
    new_plain = next(w for w in rotated.split() if w.startswith("ik-"))
    cli("keys", "revoke", key_id)
    time.sleep(1.2)
    assert chat(gw, plaintext)[0] == 401
    assert chat(gw, new_plain)[0] == 200


def test_a_projects_log_level_decides_what_the_log_keeps(gw: GatewayProcess) -> None:
    prompt = "the secret recipe is 42"
    levels = {}
    for project, level in (("loud", "full"), ("quiet", "metadata")):
        assert call(gw, "POST", "/admin/v1/projects", {"id": project, "log_level": level})[0] == 201
        key = call(gw, "POST", "/admin/v1/keys", {"project": project})[2]["key"]
        status, headers, _ = call(gw, "POST", "/v1/chat/completions",
                                  {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}, key)
        assert status == 200
        levels[project] = headers["x-interlock-request-id"]
    deadline = time.monotonic() + 10
    records: dict[str, Any] = {}
    while time.monotonic() < deadline and len(records) < 2:
        for project, request_id in levels.items():
            status, _, record = call(gw, "GET", f"/admin/v1/logs/{request_id}")
            if status == 200:
                records[project] = record
        time.sleep(0.2)
    assert set(records) == {"loud", "quiet"}
    assert prompt in json.dumps(records["loud"])
    assert prompt not in json.dumps(records["quiet"])
