"""The MCP gateway end to end: the official ``mcp`` client over streamable HTTP against a real gateway process,
in front of real upstream MCP servers written with the SDK (``tests/mcp_servers/upstream.py``: one over
streamable HTTP, others as stdio children)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx2
import openai
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import MASTER_KEY, GatewayProcess, free_port, start_gateway, wait_until_known

UPSTREAM = Path(__file__).parent / "mcp_servers" / "upstream.py"
SIM_MODEL = "openai/gpt-4.1-mini"


def start_upstream(mode: str, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(UPSTREAM), mode, str(port)], env={"UPSTREAM_NAME": name,
                            "PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        except urllib.error.HTTPError:
            return proc, port  # it answers (404 at /): up
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"upstream {name} did not start")


def config(port: int, sse_port: int, token_port: int, silent_port: int) -> str:
    stdio = f"[{sys.executable}, {UPSTREAM}, stdio]"
    return f"""
simulator: {{enabled: true, time_scale: 0}}
mcp:
  servers:
    docs: {{url: "http://127.0.0.1:{port}/mcp", headers: {{x-static: s1}}, timeout_s: 2}}
    personal: {{url: "http://127.0.0.1:{port}/mcp", per_user: {{type: api_key}}}}
    local: {{command: {stdio}, per_user: {{type: api_key, env: USER_KEY}}}}
    crashy: {{command: {stdio}, env: {{UPSTREAM_NAME: crashy}}}}
    down: {{url: "http://127.0.0.1:1/mcp", connect_timeout_s: 1}}
    legacy: {{url: "http://127.0.0.1:{sse_port}/sse", transport: sse}}
    silent: {{url: "http://127.0.0.1:{silent_port}/mcp", connect_timeout_s: 1}}
    oauthed: {{url: "http://127.0.0.1:{port}/mcp", per_user: {{type: oauth, token_url: "http://127.0.0.1:{token_port}/token",
               client_id: interlock, client_secret: s3cret}}}}
  tool_packs:
    support: {{project: acme, tools: ["docs/*", "local/echo", "local/whoami"], rename: {{"docs/search": search_docs}},
               describe: {{"docs/echo": "Echo, through the gateway."}}}}
    mine: {{project: acme, tools: ["personal/whoami"]}}
    crash: {{project: acme, tools: ["crashy/die", "crashy/echo"]}}
    partial: {{project: acme, tools: ["docs/search", "down/*"]}}
    dead: {{project: acme, tools: ["down/*"]}}
    guarded: {{project: guarded, tools: ["docs/echo", "docs/fetch_email"]}}
    beta-pack: {{project: beta, tools: ["docs/echo"]}}
    old: {{project: acme, tools: ["legacy/echo"]}}
    hangs: {{project: acme, tools: ["silent/*", "docs/search"]}}
    cal: {{project: acme, tools: ["oauthed/whoami"]}}
    logged: {{project: full, tools: ["docs/echo"]}}
    private: {{project: zdr, tools: ["docs/echo"]}}
  allowed_server_urls: ["http://127.0.0.1:{port}/"]
guardrails:
  projects:
    guarded:
      secrets: {{action: block}}
      prompt_injection: {{action: block}}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    proc, port = start_upstream("http", "docs")
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def sse_upstream() -> Iterator[int]:
    proc, port = start_upstream("sse", "legacy")
    yield port
    proc.terminate()
    proc.wait(10)


class TokenEndpoint(BaseHTTPRequestHandler):
    """An OAuth token endpoint: ``mode`` says how it answers; every form it receives is kept."""

    mode = "ok"
    forms: ClassVar[list[dict[str, list[str]]]] = []
    issued = 0

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
        TokenEndpoint.forms.append(form)
        if TokenEndpoint.mode == "down":
            self._answer(503, {"error": "temporarily_unavailable"})
        elif TokenEndpoint.mode == "revoked":
            self._answer(400, {"error": "invalid_grant", "error_description": "refresh token revoked"})
        else:
            TokenEndpoint.issued += 1
            self._answer(200, {"access_token": f"fresh-{TokenEndpoint.issued}", "expires_in": 3600,
                               "refresh_token": f"refresh-{TokenEndpoint.issued}", "token_type": "Bearer"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def token_endpoint() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def silent_upstream() -> Iterator[int]:
    """A server that accepts connections and never answers (Bifrost #4173: initialize hanging)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture(scope="module")
def gw(upstream: int, sse_upstream: int, token_endpoint: int, silent_upstream: int,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    g = start_gateway(tmp_path_factory.mktemp("mcp"), config(upstream, sse_upstream, token_endpoint,
                                                             silent_upstream))
    yield g
    g.stop()


@pytest.fixture(scope="module")
def keys(gw: GatewayProcess) -> dict[str, str]:
    out = {}
    for project, extra in (("acme", {}), ("beta", {}), ("guarded", {}), ("full", {"log_level": "full"}),
                           ("zdr", {"log_level": "full", "zero_data_retention": True})):
        assert gw.call("POST", "/admin/v1/projects", {"id": project, **extra})[0] == 201
        status, key = gw.call("POST", "/admin/v1/keys", {"project": project})
        assert status == 201
        out[project] = str(key["key"])
    wait_until_known(gw, *out.values())
    for project, user in (("acme", "u1"), ("acme", "u2"), ("beta", "b1"), ("guarded", "g1"), ("full", "f1"),
                          ("zdr", "z1")):
        status, body = gw.call("POST", "/admin/v1/mcp/registered-users", {"id": user, "project": project})
        assert status == 201, body
    for user, server, secret in (("u1", "personal", "key-of-u1"), ("u2", "personal", "key-of-u2"),
                                 ("u1", "local", "env-of-u1")):
        status, body = gw.call("PUT", f"/admin/v1/mcp/registered-users/{user}/credentials/{server}?project=acme",
                               {"api_key": secret})
        assert status == 200, body
        assert secret not in str(body)
    return out


@contextlib.asynccontextmanager
async def session(gw: GatewayProcess, pack: str, user: str, key: str = MASTER_KEY) -> AsyncIterator[ClientSession]:
    url = f"{gw.url}/api/v1/tool-packs/{pack}/registered-users/{user}/mcp"
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http, \
            streamable_http_client(url, http_client=http) as streams, ClientSession(streams[0], streams[1]) as s:
        await s.initialize()
        yield s


def text(result: types.CallToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, types.TextContent))


def post(gw: GatewayProcess, pack: str, user: str, key: str) -> tuple[int, Any]:
    """One raw initialize POST: the HTTP-level refusals (auth, unknown pack or user)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    req = urllib.request.Request(f"{gw.url}/api/v1/tool-packs/{pack}/registered-users/{user}/mcp",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"authorization": f"Bearer {key}", "content-type": "application/json",
                                          "accept": "application/json, text/event-stream"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def test_list_and_call_through_a_pack(gw: GatewayProcess, keys: dict[str, str]) -> None:
    async with session(gw, "support", "u1", keys["acme"]) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        # echo and whoami exist on both servers: namespaced; search renamed; die/fail/... from docs/* kept.
        assert {"docs__echo", "local__echo", "docs__whoami", "local__whoami", "search_docs", "sleep", "die",
                "fetch_email", "fail"} == set(tools)
        assert tools["docs__echo"].description == "Echo, through the gateway."
        assert text(await s.call_tool("docs__echo", {"text": "hi"})) == "docs: hi"
        assert "found 3 results for 'x'" in text(await s.call_tool("search_docs", {"query": "x"}))
        # Static headers reach the HTTP upstream; the user's own key reaches the stdio child's environment.
        assert "static=s1" in text(await s.call_tool("docs__whoami", {}))
        assert "env=env-of-u1" in text(await s.call_tool("local__whoami", {}))
        with pytest.raises(MCPError) as info:
            await s.call_tool("nope", {})
        assert "has no tool 'nope'" in info.value.message and "docs__echo" in info.value.message
        failed = await s.call_tool("fail", {})
        assert failed.is_error and "fail" in text(failed)  # the upstream's own error result, passed through


async def test_per_user_credentials_reach_the_right_upstream(gw: GatewayProcess, keys: dict[str, str]) -> None:
    for user in ("u1", "u2"):
        async with session(gw, "mine", user, keys["acme"]) as s:
            assert f"auth=Bearer key-of-{user}" in text(await s.call_tool("whoami", {}))
    # u2 has no credential for the stdio server: a clear error naming the fix, not a call without one.
    async with session(gw, "support", "u2", keys["acme"]) as s:
        with pytest.raises(MCPError) as info:
            await s.call_tool("local__whoami", {})
        assert "no credential for MCP server 'local'" in info.value.message


async def test_projects_and_users_are_isolated(gw: GatewayProcess, keys: dict[str, str]) -> None:
    # Another project's pack, or a user of another project through one's own pack, reads as unknown.
    status, body = post(gw, "support", "u1", keys["beta"])
    assert status == 404 and body["error"]["data"]["type"] == "unknown_tool_pack"
    status, body = post(gw, "beta-pack", "u1", keys["beta"])
    assert status == 404 and body["error"]["data"]["type"] == "unknown_registered_user"
    status, body = post(gw, "support", "u1", "ik-wrong")
    assert status == 401
    async with session(gw, "beta-pack", "b1", keys["beta"]) as s:
        assert text(await s.call_tool("echo", {"text": "b"})) == "docs: b"


async def test_access_keys_are_scoped_to_one_pack_and_user(gw: GatewayProcess, keys: dict[str, str]) -> None:
    status, minted = gw.call("POST", "/admin/v1/mcp/access-keys",
                             {"tool_pack": "mine", "registered_user": "u1", "ttl_s": 600}, key=keys["acme"])
    assert status == 201, minted
    access = minted["key"]
    async with session(gw, "mine", "u1", access) as s:
        assert "key-of-u1" in text(await s.call_tool("whoami", {}))
    # The agent's host cannot swap the user (or the pack) in the URL.
    assert post(gw, "mine", "u2", access)[0] == 403
    assert post(gw, "support", "u1", access)[0] == 403
    # Another project's key cannot mint for this pack.
    status, _ = gw.call("POST", "/admin/v1/mcp/access-keys", {"tool_pack": "mine", "registered_user": "u1"},
                        key=keys["beta"])
    assert status == 404
    assert gw.call("DELETE", f"/admin/v1/mcp/access-keys/{minted['id']}", key=keys["acme"])[0] == 200
    deadline = time.monotonic() + 10
    while post(gw, "mine", "u1", access)[0] != 401:
        assert time.monotonic() < deadline, "a revoked access key still works"
        time.sleep(0.2)


async def test_hanging_and_dying_upstreams(gw: GatewayProcess, keys: dict[str, str]) -> None:
    async with session(gw, "support", "u1", keys["acme"]) as s:
        started = time.monotonic()
        hung = await s.call_tool("sleep", {"seconds": 30})
        assert hung.is_error and "took longer than 2 s" in text(hung)
        assert time.monotonic() - started < 10
        assert text(await s.call_tool("docs__echo", {"text": "after"})) == "docs: after"
    async with session(gw, "crash", "u1", keys["acme"]) as s:
        died = await s.call_tool("die", {})
        assert died.is_error and "crashy" in text(died)
        # The next call opens a new child process.
        assert text(await s.call_tool("echo", {"text": "again"})) == "crashy: again"


async def test_a_server_that_cannot_list_is_reported_not_dropped(gw: GatewayProcess, keys: dict[str, str]) -> None:
    async with session(gw, "partial", "u1", keys["acme"]) as s:
        listing = await s.list_tools()
        assert [t.name for t in listing.tools] == ["search"]
        assert listing.meta is not None
        errors = listing.meta["interlock/errors"]
        assert errors[0]["server"] == "down" and "could not connect" in errors[0]["error"]
    async with session(gw, "dead", "u1", keys["acme"]) as s:
        with pytest.raises(MCPError) as info:
            await s.list_tools()
        assert "no server of tool pack 'dead' could list its tools" in info.value.message


async def test_guardrails_block_arguments_and_results(gw: GatewayProcess, keys: dict[str, str]) -> None:
    async with session(gw, "guarded", "g1", keys["guarded"]) as s:
        assert text(await s.call_tool("echo", {"text": "fine"})) == "docs: fine"
        with pytest.raises(MCPError) as info:
            await s.call_tool("echo", {"text": "key AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})
        assert "secrets guardrail" in info.value.message and info.value.data["detector"] == "secrets"
        with pytest.raises(MCPError) as info:
            await s.call_tool("fetch_email", {})
        assert "prompt_injection guardrail" in info.value.message and info.value.data["where"] == "result"


async def test_every_call_is_logged_and_counted(gw: GatewayProcess, keys: dict[str, str]) -> None:
    async with session(gw, "mine", "u2", keys["acme"]) as s:
        await s.call_tool("whoami", {})
    deadline = time.monotonic() + 10
    while True:
        status, body = gw.call("GET", "/admin/v1/mcp/calls?registered_user=u2&tool_pack=mine", key=keys["acme"])
        assert status == 200, body
        if body["data"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.3)
    call = body["data"][0]
    assert (call["project"], call["pack"], call["user"], call["server"], call["tool"], call["status"]) == (
        "acme", "mine", "u2", "personal", "whoami", "ok")
    assert call["args_bytes"] == 2 and call["result_bytes"] > 0 and call["arguments"] is None
    # Another project sees none of them.
    status, other = gw.call("GET", "/admin/v1/mcp/calls", key=keys["beta"])
    assert status == 200 and all(c["project"] == "beta" for c in other["data"])
    with urllib.request.urlopen(f"{gw.url}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    assert 'interlock_mcp_tool_calls_total{pack="mine",server="personal",status="ok"}' in metrics
    assert 'interlock_mcp_list_errors_total{server="down"}' in metrics


def test_responses_runs_the_mcp_tool_loop_for_any_model(gw: GatewayProcess, keys: dict[str, str]) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=keys["acme"], max_retries=0, timeout=60)
    tool = {"type": "mcp", "server_label": "docs", "require_approval": "never", "allowed_tools": ["docs__echo"],
            "server_url": f"{gw.url}/api/v1/tool-packs/support/registered-users/u1/mcp"}
    raw = client.responses.with_raw_response.create(model=SIM_MODEL, input="Echo something for me.",
                                                    tools=[tool], tool_choice="required")  # type: ignore[list-item]
    response = raw.parse()
    assert raw.headers["x-interlock-mcp-rounds"] == "2"
    kinds = [item.type for item in response.output]
    assert kinds[0] == "mcp_list_tools" and "mcp_call" in kinds and kinds[-1] == "message"
    listed = response.output[0]
    assert [t.name for t in listed.tools] == ["docs__echo"]  # type: ignore[union-attr]
    call = next(item for item in response.output if item.type == "mcp_call")
    assert call.name == "docs__echo" and call.server_label == "docs"  # type: ignore[union-attr]
    assert call.output is not None and call.output.startswith("docs: ")  # type: ignore[union-attr]
    assert json.loads(call.arguments)["text"] in call.output  # type: ignore[union-attr]
    assert response.usage is not None and response.usage.input_tokens > 0
    # The same loop, streamed: the documented events, ending in response.completed.
    with client.responses.stream(model=SIM_MODEL, input="Echo something for me.", tools=[tool],  # type: ignore[list-item]
                                 tool_choice="required") as stream:
        seen = [event.type for event in stream]
    assert seen[0] == "response.created" and seen[-1] == "response.completed"
    assert "response.mcp_list_tools.completed" in seen and "response.mcp_call.completed" in seen
    assert "response.mcp_call_arguments.done" in seen and "response.output_text.delta" in seen


def test_responses_refuses_servers_outside_the_callers_project(gw: GatewayProcess, keys: dict[str, str]) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=keys["beta"], max_retries=0, timeout=30)
    for url, param in ((f"{gw.url}/api/v1/tool-packs/support/registered-users/u1/mcp", "tools[0].server_url"),
                       ("http://169.254.169.254/latest/meta-data", "tools[0].server_url")):
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model=SIM_MODEL, input="hi", tools=[  # type: ignore[list-item]
                {"type": "mcp", "server_label": "x", "server_url": url, "require_approval": "never"}])
        assert info.value.body["param"] == param  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=SIM_MODEL, input="hi", tools=[  # type: ignore[list-item]
            {"type": "mcp", "server_label": "x", "server_url": "/api/v1/tool-packs/beta-pack/registered-users/b1/mcp",
             "require_approval": "always"}])
    assert info.value.body["param"] == "tools[0].require_approval"  # type: ignore[index]


async def test_tool_calls_are_rate_limited_per_key(gw: GatewayProcess, keys: dict[str, str]) -> None:
    status, key = gw.call("POST", "/admin/v1/keys", {"project": "beta", "limits": {"tool_calls_per_minute": 2}})
    assert status == 201, key
    limited = str(key["key"])
    wait_until_known(gw, limited)
    for _ in range(3):  # a minute boundary inside the attempt resets the window: try again
        minute = int(time.time() // 60)
        async with session(gw, "beta-pack", "b1", limited) as s:
            results = []
            for _ in range(3):
                try:
                    results.append(text(await s.call_tool("echo", {"text": "x"})))
                except MCPError as exc:
                    results.append(exc.message)
        if int(time.time() // 60) == minute:
            break
    assert results[:2] == ["docs: x", "docs: x"]
    assert "tool_calls_per_minute" in results[2] and "2" in results[2]


async def test_legacy_sse_upstream(gw: GatewayProcess, keys: dict[str, str]) -> None:
    async with session(gw, "old", "u1", keys["acme"]) as s:
        assert [t.name for t in (await s.list_tools()).tools] == ["echo"]
        assert text(await s.call_tool("echo", {"text": "sse"})) == "legacy: sse"


async def test_oauth_tokens_are_refreshed_and_a_transient_failure_keeps_them(gw: GatewayProcess,
                                                                            keys: dict[str, str]) -> None:
    # Tokens that expire within the refresh margin: the first call refreshes them at the token endpoint.
    status, body = gw.call("PUT", "/admin/v1/mcp/registered-users/u1/credentials/oauthed?project=acme",
                           {"oauth": {"access_token": "stale", "refresh_token": "r-0", "expires_in": 5}})
    assert status == 200 and "stale" not in json.dumps(body) and body["kind"] == "oauth"
    TokenEndpoint.mode = "ok"
    async with session(gw, "cal", "u1", keys["acme"]) as s:
        assert "auth=Bearer fresh-1" in text(await s.call_tool("whoami", {}))
        form = TokenEndpoint.forms[-1]
        assert (form["grant_type"], form["refresh_token"], form["client_id"], form["client_secret"]) == (
            ["refresh_token"], ["r-0"], ["interlock"], ["s3cret"])
        assert "auth=Bearer fresh-1" in text(await s.call_tool("whoami", {}))  # still valid: no new refresh
        assert TokenEndpoint.issued == 1
    # Stored tokens that have expired, and a token endpoint that is down: the call says so, and nothing is lost.
    gw.call("PUT", "/admin/v1/mcp/registered-users/u1/credentials/oauthed?project=acme",
            {"oauth": {"access_token": "old", "refresh_token": "r-1", "expires_at": time.time() - 10}})
    time.sleep(5.5)  # past the store's per-process cache
    TokenEndpoint.mode = "down"
    async with session(gw, "cal", "u1", keys["acme"]) as s:
        failed = await s.call_tool("whoami", {})
        assert failed.is_error and "could not refresh" in text(failed) and "try again" in text(failed)
        TokenEndpoint.mode = "ok"
        assert "auth=Bearer fresh-2" in text(await s.call_tool("whoami", {}))
        assert TokenEndpoint.forms[-1]["refresh_token"] == ["r-1"]  # the kept refresh token worked
    # A permanent refusal says the user must authorize again.
    gw.call("PUT", "/admin/v1/mcp/registered-users/u1/credentials/oauthed?project=acme",
            {"oauth": {"access_token": "old", "refresh_token": "r-bad", "expires_at": time.time() - 10}})
    time.sleep(5.5)
    TokenEndpoint.mode = "revoked"
    try:
        async with session(gw, "cal", "u1", keys["acme"]) as s:
            with pytest.raises(MCPError) as info:
                await s.call_tool("whoami", {})
            assert "invalid_grant" in info.value.message and "authorize again" in info.value.message
            assert "r-bad" not in info.value.message
    finally:
        TokenEndpoint.mode = "ok"


async def test_content_is_logged_at_full_level_and_never_under_zdr(gw: GatewayProcess,
                                                                  keys: dict[str, str]) -> None:
    wait_until_known(gw, *(gw.call("POST", "/admin/v1/keys", {"project": p})[1]["key"] for p in ("full", "zdr")))
    for pack, user in (("logged", "f1"), ("private", "z1")):
        async with session(gw, pack, user) as s:
            await s.call_tool("echo", {"text": "the content"})
    deadline = time.monotonic() + 10
    while True:
        rows = {c["pack"]: c for c in gw.call("GET", "/admin/v1/mcp/calls")[1]["data"] if c["pack"] in
                ("logged", "private")}
        if len(rows) == 2:
            break
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert json.loads(rows["logged"]["arguments"]) == {"text": "the content"}
    assert "the content" in rows["logged"]["result"]
    assert rows["private"]["arguments"] is None and rows["private"]["result"] is None
    with sqlite3.connect(gw.home / "state" / "interlock.db") as conn:
        stored = dict(conn.execute("SELECT pack, coalesce(arguments, '') || coalesce(result, '') FROM mcp_calls "
                                   "WHERE pack IN ('logged', 'private')").fetchall())
    assert "the content" in stored["logged"] and stored["private"] == ""


async def test_a_cancelled_call_leaves_the_session_usable(gw: GatewayProcess, keys: dict[str, str]) -> None:
    async with session(gw, "support", "u1", keys["acme"]) as s:
        with pytest.raises(MCPError):
            await s.call_tool("sleep", {"seconds": 1.5}, read_timeout_seconds=0.3)  # the client gives up
        assert text(await s.call_tool("docs__echo", {"text": "still here"})) == "docs: still here"
    deadline = time.monotonic() + 10
    while True:
        calls = gw.call("GET", "/admin/v1/mcp/calls?tool=sleep&tool_pack=support")[1]["data"]
        if any(c["status"] == "cancelled" for c in calls):
            break
        assert time.monotonic() < deadline, calls
        time.sleep(0.3)


async def test_several_workers_serve_mcp_without_sessions(upstream: int, tmp_path: Path) -> None:
    config = (f"mcp:\n  servers:\n    docs: {{url: 'http://127.0.0.1:{upstream}/mcp'}}\n"
              "  tool_packs:\n    p: {project: w, tools: ['docs/echo']}\n")
    g = start_gateway(tmp_path, config, workers=2)
    try:
        assert g.call("POST", "/admin/v1/projects", {"id": "w"})[0] == 201
        assert g.call("POST", "/admin/v1/mcp/registered-users", {"id": "u", "project": "w"})[0] == 201
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        req = urllib.request.Request(f"{g.url}/api/v1/tool-packs/p/registered-users/u/mcp", method="POST",
                                     data=json.dumps(init).encode(),
                                     headers={"authorization": f"Bearer {MASTER_KEY}", "content-type":
                                              "application/json", "accept": "application/json, text/event-stream"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers.get("mcp-session-id") is None  # no session to lose in the other worker
        for i in range(6):  # new connections: the kernel spreads them over both workers
            async with session(g, "p", "u") as s:
                assert text(await s.call_tool("echo", {"text": str(i)})) == f"docs: {i}"
    finally:
        g.stop()


def test_responses_reaches_an_allowed_external_server(gw: GatewayProcess, upstream: int,
                                                       keys: dict[str, str]) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=keys["acme"], max_retries=0, timeout=60)
    tool = {"type": "mcp", "server_label": "ext", "require_approval": "never", "allowed_tools": ["echo"],
            "server_url": f"http://127.0.0.1:{upstream}/mcp", "headers": {"x-static": "from-request"}}
    response = client.responses.create(model=SIM_MODEL, input="Echo this.", tools=[tool],  # type: ignore[list-item]
                                       tool_choice="required")
    listed = next(item for item in response.output if item.type == "mcp_list_tools")
    assert [t.name for t in listed.tools] == ["echo"]  # type: ignore[union-attr]
    call = next(item for item in response.output if item.type == "mcp_call")
    assert call.output is not None and call.output.startswith("docs: ")  # type: ignore[union-attr]


async def test_an_upstream_that_never_answers_cannot_hang_initialize_or_listing(gw: GatewayProcess,
                                                                                keys: dict[str, str]) -> None:
    started = time.monotonic()
    async with session(gw, "hangs", "u1", keys["acme"]) as s:
        assert time.monotonic() - started < 3  # initialize is the gateway's own: no upstream is asked
        listing = await s.list_tools()
        assert [t.name for t in listing.tools] == ["search"]
        assert listing.meta is not None and listing.meta["interlock/errors"][0]["server"] == "silent"
        assert "1 s" in listing.meta["interlock/errors"][0]["error"]
    assert time.monotonic() - started < 10


async def test_upstream_connections_are_reused_after_sse_answers(upstream: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK client closes an SSE answer before its end; the pool's transport reads the rest first, so calls
    share connections instead of opening one each."""
    from httpcore2._async import connection

    from interlock.mcp.model import parse_server
    from interlock.mcp.upstream import Access, Upstream

    opened: list[object] = []
    original = connection.AsyncHTTPConnection.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(connection.AsyncHTTPConnection, "__init__", counting)
    up = Upstream(parse_server("docs", {"url": f"http://127.0.0.1:{upstream}/mcp"}), Access({}, {}))
    try:
        for i in range(20):
            assert text(await up.call("echo", {"text": str(i)})) == f"docs: {i}"
    finally:
        await up.close()
    assert len(opened) <= 4  # initialize, the standalone GET stream, and calls on a kept connection


def test_console_tools_page(gw: GatewayProcess, keys: dict[str, str], browser: Any) -> None:
    """The console's Tools page: servers, packs, calls per tool and registered users, never a credential;
    a project key sees its own project's only. Screenshots at desktop and phone width."""
    from tests.test_console_browser import DESKTOP, PHONE, shot
    from tests.test_console_playground_browser import no_sideways_scroll, visit

    async def one_call() -> None:
        async with session(gw, "beta-pack", "b1", keys["beta"]) as s:
            await s.call_tool("echo", {"text": "for the page"})

    # Playwright's sync API runs an event loop in this thread: the MCP client runs in one of its own.
    caller = threading.Thread(target=asyncio.run, args=(one_call(),))
    caller.start()
    caller.join(60)
    for key, viewport, name in ((MASTER_KEY, DESKTOP, "tools-desktop"), (keys["beta"], PHONE, "tools-phone")):
        v = visit(browser, gw, viewport)
        try:
            page = v.page
            page.goto(f"{gw.url}/console/tools")
            page.wait_for_url("**/console/signin**")
            page.get_by_label("Key").fill(key)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/console/tools")
            body = page.locator("main").inner_text()
            assert "key-of-u1" not in page.content() and "env-of-u1" not in page.content()
            if key == MASTER_KEY:
                assert "support" in body and "u1" in body and "personal (api_key)" in body
                calls = page.locator("section", has=page.locator("#calls-h")).inner_text()
                assert "docs/echo" in calls or "docs/search" in calls
                # Calls per hour: this hour's bar (the last) is the peak; the summary is in words.
                spark = page.locator("svg.spark").first
                assert (spark.get_attribute("aria-label") or "").startswith("Calls per hour over 24 hours: at most")
                assert spark.locator("rect:not(.err)").last.get_attribute("height") == "24.0"
            else:
                assert "beta-pack" in body and "b1" in body
                assert "support" not in body and "u1" not in body  # another project's packs and users
                shot(page, name)
                no_sideways_scroll(page)
            shot(page, name)
            v.check_local(gw)
        finally:
            v.close()
