"""The request log end to end: a real gateway process, its admin API, CLI, secrets, ZDR and shutdown."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway

pytestmark = pytest.mark.slow

VENDOR_KEY = "sk-dead-vendor-secret-0123456789abcdef"
MODEL = "openai/gpt-4.1-mini"


def config(extra: str = "", level: str = "full", flush: float = 0.1) -> str:
    return f"""
vendors:
  dead:
    type: openai
    base_url: http://127.0.0.1:9
    api_key: {VENDOR_KEY}
    timeouts: {{connect: 1, first_byte: 1, idle: 1, total: 2}}
simulator:
  enabled: true
  time_scale: 0
logging:
  level: {level}
  flush_interval: {flush}
{extra}
"""


def call(gw: GatewayProcess, path: str, body: dict[str, Any] | None = None, key: str | None = MASTER_KEY,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(gw.url + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET")
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def chat(gw: GatewayProcess, content: str, *, model: str = MODEL, headers: dict[str, str] | None = None,
         **extra: Any) -> tuple[int, str]:
    status, head, _ = call(gw, "/v1/chat/completions",
                           {"model": model, "messages": [{"role": "user", "content": content}], **extra},
                           headers=headers)
    return status, head.get("x-interlock-request-id", "")


def wait_logged(gw: GatewayProcess, rid: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = call(gw, f"/admin/v1/logs/{rid}")
        if status == 200:
            return dict(json.loads(body))
        time.sleep(0.1)
    raise AssertionError(f"{rid} never reached the log")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    g = start_gateway(tmp_path_factory.mktemp("ledger"), config())
    yield g
    g.stop()


def test_record_fields_and_admin_queries(gw: GatewayProcess) -> None:
    status, rid = chat(gw, "hello there", headers={"x-interlock-tags": "team-a, exp-1"}, user="end-user-42",
                       stream=True, stream_options={"include_usage": True})
    assert status == 200 and rid
    rec = wait_logged(gw, rid)
    assert rec["tags"] == ["team-a", "exp-1"] and rec["end_user"] == "end-user-42"
    assert rec["vendor"] == "simulator" and rec["model"] == MODEL and rec["requested_model"] == MODEL
    assert rec["stream"] == 1 and rec["status"] == 200 and rec["inbound"]
    assert rec["received_at"] <= rec["first_byte_at"] <= rec["done_at"]
    assert rec["input_tokens"] > 0 and rec["output_tokens"] > 0 and rec["cost_usd"] > 0
    assert rec["ttft_ms"] is not None and rec["duration_ms"] >= rec["ttft_ms"]
    assert rec["key_id"] == MASTER_KEY[:12] and rec["explanation"]
    assert rec["content_level"] == "full" and rec["request_content"]["messages"][0]["content"] == "hello there"
    assert isinstance(rec["response_content"], str) and rec["response_content"]

    status, bad = chat(gw, "x", model="dead/some-model")
    assert status >= 500
    failed = wait_logged(gw, bad)
    assert failed["status"] >= 500 and failed["error_type"] and failed["vendor"] == "dead"

    # Filters: tag, status, text search, model; cursor pagination.
    _, _, body = call(gw, "/admin/v1/logs?tag=team-a")
    assert [r["id"] for r in json.loads(body)["data"]] == [rid]
    _, _, body = call(gw, "/admin/v1/logs?status=error&vendor=dead")
    assert bad in [r["id"] for r in json.loads(body)["data"]]
    _, _, body = call(gw, "/admin/v1/logs?q=hello%20there")
    assert [r["id"] for r in json.loads(body)["data"]] == [rid]
    for _ in range(3):
        chat(gw, "page filler")
    time.sleep(0.5)
    _, _, body = call(gw, "/admin/v1/logs?limit=2")
    page = json.loads(body)
    assert len(page["data"]) == 2 and page["has_more"] and page["next_cursor"]
    _, _, body = call(gw, f"/admin/v1/logs?limit=2&cursor={page['next_cursor']}")
    assert not {r["id"] for r in json.loads(body)["data"]} & {r["id"] for r in page["data"]}

    status, _, body = call(gw, "/admin/v1/spend?group_by=tag")
    assert status == 200
    tags = {r["tag"]: r["requests"] for r in json.loads(body)["data"]}
    assert tags == {"team-a": 1, "exp-1": 1}
    _, _, body = call(gw, "/admin/v1/spend?group_by=vendor")
    vendors = {r["vendor"]: r for r in json.loads(body)["data"]}
    assert vendors["simulator"]["requests"] >= 4 and vendors["dead"]["errors"] >= 1

    # Export: every matching record, as JSONL and CSV.
    _, head, body = call(gw, "/admin/v1/logs?format=jsonl&vendor=simulator")
    assert head["content-type"].startswith("application/x-ndjson")
    assert len(body.splitlines()) >= 4
    _, _, body = call(gw, "/admin/v1/logs?format=csv&vendor=dead")
    assert body.splitlines()[0].startswith(b"id,received_at")


@pytest.mark.parametrize(("path", "param"), [
    ("/admin/v1/logs?limit=0", "limit"), ("/admin/v1/logs?from=yesterday", "from"),
    ("/admin/v1/logs?status=broken", "status"), ("/admin/v1/logs?cursor=zzz", "cursor"),
    ("/admin/v1/logs?nope=1", "nope"), ("/admin/v1/spend?group_by=week", "group_by"),
    ("/admin/v1/logs/req_unknown", "id"),
])
def test_admin_errors_name_the_parameter(gw: GatewayProcess, path: str, param: str) -> None:
    status, _, body = call(gw, path)
    error = json.loads(body)["error"]
    assert status in (400, 404) and error["param"] == param and error["message"]


def test_admin_api_needs_the_admin_key(gw: GatewayProcess) -> None:
    assert call(gw, "/admin/v1/logs", key=None)[0] == 401
    assert call(gw, "/admin/v1/spend", key="ik-wrong-key-000000000")[0] == 401


def test_secrets_are_never_stored(gw: GatewayProcess) -> None:
    chat(gw, f"my vendor key is {VENDOR_KEY} and my bearer is Bearer {MASTER_KEY}")
    _, rid = chat(gw, "fails upstream", model="dead/x")
    wait_logged(gw, rid)
    state = gw.home / "state"
    blobs = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file() and p.name != "secret")
    assert VENDOR_KEY.encode() not in blobs
    assert MASTER_KEY.encode() not in blobs
    _, _, body = call(gw, "/admin/v1/logs?q=my%20vendor%20key")
    content = json.loads(body)["data"][0]["request_content"]["messages"][0]["content"]
    assert "[REDACTED]" in content


def test_metrics_exposition(gw: GatewayProcess) -> None:
    chat(gw, "count me")
    status, head, body = call(gw, "/metrics", key=None)
    text = body.decode()
    assert status == 200 and head["content-type"].startswith("text/plain; version=0.0.4")
    assert f'interlock_requests_total{{vendor="simulator",model="{MODEL}",status="200"}}' in text
    assert 'interlock_request_errors_total{vendor="dead"' in text
    assert "# TYPE interlock_request_duration_seconds histogram" in text
    assert f'interlock_time_to_first_token_seconds_bucket{{vendor="simulator",model="{MODEL}",le="+Inf"}}' in text
    assert f'interlock_tokens_total{{vendor="simulator",model="{MODEL}",type="output"}}' in text
    assert 'interlock_log_store_up{store="sqlite"} 1' in text
    # Every histogram's +Inf bucket equals its count.
    for line in text.splitlines():
        if line.startswith("interlock_request_duration_seconds_count"):
            labels, count = line.split("_count", 1)[1].rsplit(" ", 1)
            inf = labels[:-1] + ',le="+Inf"}'
            assert f"interlock_request_duration_seconds_bucket{inf} {count}" in text


def test_cli_logs_and_spend(gw: GatewayProcess) -> None:
    _, rid = chat(gw, "from the cli", headers={"x-interlock-tags": "cli"})
    wait_logged(gw, rid)
    env = clean_env(INTERLOCK_HOME=str(gw.home / "state"))
    cfg = str(gw.home / "interlock.yaml")
    out = subprocess.run([sys.executable, "-m", "interlock", "logs", "--config", cfg, "--status", "error"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "dead" in out.stdout and rid not in out.stdout
    out = subprocess.run([sys.executable, "-m", "interlock", "logs", "--config", cfg, "--tag", "cli", "--format",
                          "jsonl"], capture_output=True, text=True, env=env, timeout=60)
    assert [json.loads(line)["id"] for line in out.stdout.splitlines()] == [rid]
    out = subprocess.run([sys.executable, "-m", "interlock", "spend", "--config", cfg, "--group-by", "vendor"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "simulator" in out.stdout and "total" in out.stdout


def test_zero_data_retention_stores_no_content(tmp_path: Path) -> None:
    g = start_gateway(tmp_path, config(level="full").replace("logging:\n", "logging:\n  zero_data_retention: true\n"))
    try:
        _, ok = chat(g, "private prompt text")
        _, bad = chat(g, "private prompt text", model="dead/x")
        for rid in (ok, bad):
            rec = wait_logged(g, rid)
            assert rec["request_content"] is None and rec["response_content"] is None
            assert rec["error_message"] is None and rec["content_level"] == "zdr"
        blobs = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
        assert b"private prompt text" not in blobs
    finally:
        g.stop()


def test_sigterm_drains_every_record(tmp_path: Path) -> None:
    g = start_gateway(tmp_path, config(level="metadata", flush=1.0))
    try:
        with ThreadPoolExecutor(8) as pool:
            ids = [rid for status, rid in pool.map(lambda i: chat(g, f"n{i}"), range(200)) if status == 200]
        assert len(ids) == 200
        os.kill(g.proc.pid, signal.SIGTERM)  # at once: most records are still in the 1 s buffer
        g.proc.wait(30)
    finally:
        g.stop()
    with sqlite3.connect(tmp_path / "state" / "interlock.db") as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM requests")}
        rolled = conn.execute("SELECT sum(requests) FROM spend_daily WHERE tag = '*'").fetchone()[0]
    assert set(ids) <= stored and rolled == len(stored)
