"""Zero data retention, end to end: a unique marker sent through every inference endpoint is nowhere after.

A real gateway process logs at ``level: full`` to SQLite or PostgreSQL, counts
limits and budgets in Redis (under a prefix of this test), exports traces over
OTLP and budget alerts to a webhook. Under ZDR - ``logging.zero_data_retention``
for everyone, or a project's own ``zero_data_retention`` - a marker carried in
prompts, system prompts, tool arguments, tool results and the vendor's answers
(streamed and not) through ``/v1/chat/completions``, ``/v1/messages``,
``/v1/messages/count_tokens``, ``/v1/responses``, ``/v1/embeddings`` and
``/v1/route/explain`` (and errors that quote it) must not be in any byte of any
file under the gateway's home (state directory with the SQLite WAL and -shm,
spill directory, the captured server output), in a ``pg_dump`` of the test
database, in any Redis key or value under the prefix, in any OTLP export or any
webhook body. The control: a project without ZDR, in the same gateway, sends its
own marker, which *is* found where content is kept - so the search can find it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import redis
from aiohttp import web

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway, wait_until_known
from tests.ledger_proxy import PgProxy
from tests.pg_util import PG_HOST, PG_PORT, create_database, drop_database, url
from tests.socket_app import SocketApp

pytestmark = pytest.mark.slow
REDIS_URL = "redis://127.0.0.1:6379/0"
CHAT, REFUSE, EMBED = "zdrlab/chat", "zdrlab/refuse", "zdrlab/embed-small"
_MARKER = re.compile(rb"zdrmark[0-9a-f]{16}")
TOOLS_OPENAI: Any = [{"type": "function", "function": {"name": "lookup", "description": "Look a thing up",
                                                       "parameters": {"type": "object",
                                                                      "properties": {"q": {"type": "string"}}}}}]


def usage(body: dict[str, Any]) -> dict[str, int]:
    return {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}


class MarkerVendor(SocketApp):
    """An OpenAI-compatible vendor that answers with the marker it finds in the request, plus a sink.

    Chat answers carry the marker in their text and, when tools are offered, in a tool call's arguments;
    model ``refuse`` is a 400 whose message quotes the prompt (as content filters do). ``/v1/traces`` and
    ``/hook`` keep every body the gateway posts (OTLP spans, budget alerts).
    """

    def __init__(self) -> None:
        super().__init__()
        self.posted: dict[str, list[bytes]] = {"traces": [], "hook": []}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v1/traces", self.sink("traces"))
        app.router.add_post("/hook", self.sink("hook"))

    def sink(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            self.posted[name].append(await request.read())
            return web.json_response({})
        return handler

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        found = _MARKER.search(raw)
        marker = found.group().decode() if found else "none"
        if body["model"] == "refuse":
            return web.json_response({"error": {"message": f"Flagged by the content filter: '{marker}'",
                                                "type": "invalid_request_error", "code": "content_filter"}},
                                     status=400)
        text = f"The answer mentions {marker}."
        call = ({"id": "call_m1", "type": "function",
                 "function": {"name": "lookup", "arguments": json.dumps({"q": marker})}} if body.get("tools") else None)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if call:
                message["tool_calls"] = [call]
            return web.json_response({
                "id": "chatcmpl-z", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}],
                "usage": usage(body)})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> None:
            chunk = {"id": "chatcmpl-z", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                     "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
                     **extra}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        await send({"role": "assistant", "content": ""})
        for piece in (text[:12], text[12:]):
            await send({"content": piece})
        if call:
            await send({"tool_calls": [{"index": 0, **call}]})
        await send({}, "tool_calls" if call else "stop")
        await send(None, usage=usage(body))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response({"object": "list", "model": body["model"], "usage": {"prompt_tokens": 5,
                                                                                      "total_tokens": 5},
                                  "data": [{"object": "embedding", "index": i, "embedding": [0.5, float(i)]}
                                           for i in range(len(inputs))]})


@pytest.fixture(scope="module")
def vendor() -> Iterator[MarkerVendor]:
    server = MarkerVendor().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    name = create_database()
    yield name
    drop_database(name)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    name = f"itest-zdr-{os.urandom(4).hex()}:"
    yield name
    drop_redis(name)


def config(vendor: MarkerVendor, *, zdr: bool, store: str | None, prefix: str, pg_port: int = PG_PORT) -> str:
    base = f"http://127.0.0.1:{vendor.port}"
    return f"""
vendors:
  marker:
    type: openai
    base_url: {base}/v1
    api_key: sk-marker-vendor-key
catalog:
  models:
    {CHAT}:
      name: Chat that echoes
      context_window: 32768
      max_output: 4096
      capabilities: [streaming, tools]
      routes:
        marker: {{vendor_model_id: chat, price: {{input: 1.0, output: 2.0}}}}
    {REFUSE}:
      name: Chat that refuses
      context_window: 32768
      capabilities: [streaming, tools]
      routes:
        marker: {{vendor_model_id: refuse, price: {{input: 1.0, output: 2.0}}}}
    {EMBED}:
      name: Embedder
      context_window: 8192
      routes:
        marker: {{vendor_model_id: embed, price: {{input: 1.0, output: 0}}}}
logging:
  level: full
  flush_interval: 0.1
  zero_data_retention: {str(zdr).lower()}
redis: {{url: '{REDIS_URL}', key_prefix: '{prefix}'}}
telemetry:
  otlp_endpoint: {base}
governance:
  alert_webhook: {base}/hook
  flush_interval_s: 0.2
{f"store: {url(store, pg_port)}" if store else ""}
"""


def admin(gw: GatewayProcess, method: str, path: str, body: Any) -> Any:
    import urllib.request

    req = urllib.request.Request(gw.url + path, data=json.dumps(body).encode(), method=method,
                                 headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def project_key(gw: GatewayProcess, pid: str, zdr: bool) -> str:
    admin(gw, "POST", "/admin/v1/projects", {"id": pid, "log_level": "full", **({"zero_data_retention": True}
                                                                             if zdr else {})})
    # A rate limit and a tiny soft budget: counters live in Redis, and the budget's alerts go to the webhook.
    key = admin(gw, "POST", "/admin/v1/keys", {"project": pid, "limits": {"rpm": 100000, "tpm": 100000000},
                                               "budget": {"amount_usd": 0.00001, "period": "daily",
                                                          "mode": "soft"}})
    return str(key["key"])


def exercise(gw: GatewayProcess, key: str, marker: str) -> None:
    """The marker through every inference endpoint, streamed and not, in prompts, tools, results and errors."""
    oa = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)
    an = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=30)
    messages: Any = [
        {"role": "system", "content": f"system prompt {marker}"},
        {"role": "user", "content": f"user prompt {marker}"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "lookup",
                                                              "arguments": json.dumps({"q": marker})}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": f"tool result {marker}"}]
    done = oa.chat.completions.create(model=CHAT, messages=messages, tools=TOOLS_OPENAI)
    assert marker in (done.choices[0].message.content or "")
    streamed = "".join(c.choices[0].delta.content or "" for c in oa.chat.completions.create(
        model=CHAT, messages=messages, tools=TOOLS_OPENAI, stream=True, stream_options={"include_usage": True})
        if c.choices)
    assert marker in streamed
    with pytest.raises(openai.BadRequestError):  # the vendor's error quotes the prompt
        oa.chat.completions.create(model=REFUSE, messages=messages)
    with pytest.raises(openai.BadRequestError):  # the gateway's own 400 quotes the bad value
        oa.chat.completions.create(model=CHAT, messages=[{"role": marker, "content": "x"}])  # type: ignore[misc, list-item]

    tools_an: Any = [{"name": "lookup", "description": "Look a thing up",
                      "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    turns: Any = [
        {"role": "user", "content": f"user prompt {marker}"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_0", "name": "lookup",
                                           "input": {"q": marker}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0",
                                      "content": f"tool result {marker}"}]}]
    message = an.messages.create(model=CHAT, max_tokens=64, system=f"system {marker}", messages=turns,
                                 tools=tools_an)
    assert any(marker in json.dumps(block.model_dump()) for block in message.content)
    with an.messages.stream(model=CHAT, max_tokens=64, system=f"system {marker}", messages=turns,
                            tools=tools_an) as stream:
        assert marker in json.dumps(stream.get_final_message().model_dump())
    assert an.messages.count_tokens(model=CHAT, system=f"system {marker}", messages=turns,
                                    tools=tools_an).input_tokens > 0

    items: Any = [{"type": "message", "role": "user", "content": f"user prompt {marker}"},
                  {"type": "function_call", "call_id": "call_0", "name": "lookup",
                   "arguments": json.dumps({"q": marker})},
                  {"type": "function_call_output", "call_id": "call_0", "output": f"tool result {marker}"}]
    tools_resp: Any = [{"type": "function", "name": "lookup",
                        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    response = oa.responses.create(model=CHAT, input=items, instructions=f"instructions {marker}", tools=tools_resp)
    assert marker in response.output_text
    events = list(oa.responses.create(model=CHAT, input=items, tools=tools_resp, stream=True))
    assert events[-1].type == "response.completed" and marker in events[-1].response.output_text  # type: ignore[union-attr]
    oa.embeddings.create(model=EMBED, input=[f"embed this {marker}", marker])
    explained = oa.post("/route/explain", cast_to=object, body={"model": CHAT, "messages": [
        {"role": "user", "content": f"explain {marker}"}]})
    assert isinstance(explained, dict) and explained["route"]


def redis_bytes(prefix: str) -> tuple[int, bytes]:
    """Every key under ``prefix`` and its value, whatever its type, as one blob; and how many keys there were."""
    client = redis.Redis.from_url(REDIS_URL)
    blob = bytearray()
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    for key in keys:
        blob += key + b"\n"
        kind = client.type(key)
        if kind == b"string":
            blob += client.get(key) or b""
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                blob += field + b"=" + value + b"\n"
        elif kind == b"set":
            blob += b"\n".join(client.smembers(key))
        elif kind == b"zset":
            blob += b"\n".join(client.zrange(key, 0, -1))
        elif kind == b"list":
            blob += b"\n".join(client.lrange(key, 0, -1))
        elif kind != b"none":  # (a stream, say: not a type interlock writes) its serialised form
            blob += client.dump(key) or b""
    client.close()
    return len(keys), bytes(blob)


def drop_redis(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def pg_dump(name: str) -> bytes:
    return subprocess.run(["pg_dump", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "--data-only", name],
                          check=True, capture_output=True, timeout=60).stdout


def files_with(home: Path, needle: bytes) -> list[str]:
    """Files under ``home`` (every one: state, WAL, -shm, spill, metrics, the server's output) holding ``needle``."""
    hits = []
    for path in sorted(home.rglob("*")):
        if path.is_file() and needle in path.read_bytes():
            hits.append(str(path.relative_to(home)))
    return hits


@pytest.mark.parametrize("scope", ["global", "project"])
def test_zero_data_retention_leaves_no_content_anywhere(scope: str, store: str | None, vendor: MarkerVendor,
                                                        prefix: str, tmp_path: Path) -> None:
    secret, control = (f"zdrmark{os.urandom(8).hex()}" for _ in range(2))
    for posted in vendor.posted.values():
        posted.clear()
    # Two workers: metric snapshots go to the state directory too, and are searched with the rest.
    gw = start_gateway(tmp_path, config(vendor, zdr=scope == "global", store=store, prefix=prefix), workers=2)
    try:
        zdr_key = project_key(gw, "private", zdr=scope == "project")  # under global ZDR, the flag is not needed
        open_key = project_key(gw, "open", zdr=False)
        wait_until_known(gw, zdr_key, open_key)
        exercise(gw, zdr_key, secret)
        # Under ZDR nothing was stored: the Responses API says store false, and has nothing to continue from.
        oa = openai.OpenAI(base_url=gw.base_url, api_key=zdr_key, max_retries=0)
        answer = oa.responses.create(model=CHAT, input=f"plain call {secret}")
        assert answer.store is False
        with pytest.raises(openai.NotFoundError):
            oa.responses.retrieve(answer.id)
        with pytest.raises(openai.BadRequestError) as info:
            oa.responses.create(model=CHAT, input="more", previous_response_id=answer.id)
        assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]
        if scope == "project":
            exercise(gw, open_key, control)
            kept = openai.OpenAI(base_url=gw.base_url, api_key=open_key, max_retries=0).responses.create(
                model=CHAT, input=f"plain call {control}")
            assert kept.store is True
        time.sleep(1.5)  # request log batches, spend flushes, trace exports, alerts
    finally:
        gw.stop()  # graceful: everything pending is written before the search
    keys, in_redis = redis_bytes(prefix)
    dump = pg_dump(store) if store else b""
    assert keys > 0, "the gateway kept no counters in Redis: the search there would prove nothing"
    assert vendor.posted["traces"] and vendor.posted["hook"], "no spans or alerts were exported"
    assert gw.output().strip(), "no server output was captured"
    needle = secret.encode()
    assert files_with(tmp_path, needle) == []
    assert needle not in dump
    assert needle not in in_redis and needle not in redis_bytes("")[1]  # under the prefix, and anywhere else
    assert not [b for b in vendor.posted["traces"] + vendor.posted["hook"] if needle in b]
    if scope == "project":
        # The control: the same calls without ZDR leave content where content is kept.
        where = dump if store else b"".join(p.read_bytes() for p in (tmp_path / "state").glob("interlock.db*"))
        assert control.encode() in where


def test_records_spilled_while_the_store_is_down_hold_no_content(vendor: MarkerVendor, prefix: str,
                                                                 tmp_path: Path) -> None:
    """PostgreSQL goes away: the request log spills to ``ledger-spill/``; under ZDR the spill holds no content."""
    secret, control = (f"zdrmark{os.urandom(8).hex()}" for _ in range(2))
    name = create_database()
    proxy = PgProxy()
    proxy.up()
    gw = start_gateway(tmp_path, config(vendor, zdr=False, store=name, prefix=prefix, pg_port=proxy.port))
    try:
        zdr_key = project_key(gw, "private", zdr=True)
        open_key = project_key(gw, "open", zdr=False)
        time.sleep(0.7)
        proxy.down()
        exercise(gw, zdr_key, secret)
        exercise(gw, open_key, control)
        time.sleep(0.5)
        gw.stop()  # still down: what is pending is spilled, not written
        spilled = list((tmp_path / "state" / "ledger-spill").glob("*.jsonl"))
        assert spilled and "spilling" in gw.output()
        assert any(control.encode() in p.read_bytes() for p in spilled)  # the control: content is spilled
        assert files_with(tmp_path, secret.encode()) == []
    finally:
        gw.stop()
        proxy.close()
        drop_database(name)


def test_the_search_finds_content_in_the_sqlite_wal(tmp_path: Path) -> None:
    """``files_with`` reads raw bytes: text written to a SQLite WAL (not yet checkpointed) is found there."""
    import sqlite3

    db = tmp_path / "state" / "x.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (v BLOB)")
    conn.execute("INSERT INTO t VALUES (?)", (b"zdrmark0123456789abcdef",))
    conn.commit()
    assert files_with(tmp_path, b"zdrmark0123456789abcdef") == ["state/x.db-wal"]
    conn.close()


def test_the_cli_creates_a_zero_data_retention_project(tmp_path: Path) -> None:
    env = clean_env(INTERLOCK_HOME=str(tmp_path / "state"))

    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "interlock", *args], capture_output=True, text=True, env=env,
                              timeout=60, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    cli("projects", "create", "private", "--zero-data-retention")
    cli("projects", "create", "open", "--log-level", "full")
    rows = {line.split()[0]: line.split()[2] for line in cli("projects", "list").splitlines()[1:]}
    assert rows == {"private": "zdr", "open": "full"}
