"""The MCP gateway's pure parts: definitions, pack selection, the ASGI bridge, the Responses event stream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from mcp import types

from interlock.config import ConfigError, load_settings
from interlock.core.errors import NotFound
from interlock.mcp.bridge import Bridge, asgi_scope
from interlock.mcp.model import SpecError, parse_pack, parse_server
from interlock.mcp.packs import select
from interlock.mcp.responses_stream import events
from interlock.mcp.responses_tools import _add_usage, _function_name
from interlock.mcp.server import jsonrpc_error_body
from interlock.mcp.settings import McpSettings
from interlock.mcp.upstream import Access
from interlock.vendors.registry import VENDOR_TABLE

SERVERS = {"a": parse_server("a", {"url": "http://127.0.0.1:1/mcp"}),
           "b": parse_server("b", {"command": ["python", "b.py"]})}


def tool(name: str, description: str = "d") -> types.Tool:
    return types.Tool(name=name, description=description, input_schema={"type": "object"})


def test_pack_selection_allowlists_renames_and_namespaces_collisions() -> None:
    pack = parse_pack("p", {"project": "acme", "tools": ["a/*", "b/echo", "b/other"],
                            "rename": {"a/search": "find"}, "describe": {"b/other": "Other, overridden."}}, SERVERS)
    listed = {"a": [tool("echo"), tool("search"), tool("other")], "b": [tool("echo"), tool("other"), tool("hidden")]}
    chosen = {t.name: (t.server, t.upstream_name, t.tool.description) for t in select(pack, listed)}
    assert chosen == {"a__echo": ("a", "echo", "d"), "b__echo": ("b", "echo", "d"), "find": ("a", "search", "d"),
                      "a__other": ("a", "other", "d"), "b__other": ("b", "other", "Other, overridden.")}
    # Without the collision, a name is its own.
    assert [t.name for t in select(pack, {"a": [tool("echo")]})] == ["echo"]


@pytest.mark.parametrize(("name", "data", "key"), [
    ("x", {"url": "ftp://host/mcp"}, "url"),
    ("x", {"url": "http://u:p@host/mcp"}, "url"),
    ("x", {"url": "http://h/mcp", "command": ["a"]}, "server"),
    ("x", {"command": []}, "command"),
    ("x", {"command": ["a"], "headers": {"a": "b"}}, "headers"),
    ("x", {"url": "http://h/mcp", "headers": {"bad header": "v"}}, "headers.bad header"),
    ("x", {"url": "http://h/mcp", "timeout_s": 0}, "timeout_s"),
    ("x", {"url": "http://h/mcp", "per_user": {"type": "magic"}}, "per_user.type"),
    ("x", {"command": ["a"], "per_user": {"type": "api_key"}}, "per_user.env"),
    ("x", {"url": "http://h/mcp", "per_user": {"type": "oauth", "client_id": "c"}}, "per_user.token_url"),
    ("bad id!", {"url": "http://h/mcp"}, "name"),
    ("x", {"url": "http://h/mcp", "extra": 1}, "extra"),
])
def test_server_definitions_are_checked(name: str, data: dict[str, Any], key: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_server(name, data)
    assert info.value.key == key


def test_pack_definitions_are_checked() -> None:
    with pytest.raises(SpecError, match="unknown server 'zz'"):
        parse_pack("p", {"project": "acme", "tools": ["zz/*"]}, SERVERS)
    with pytest.raises(SpecError, match="does not include"):
        parse_pack("p", {"project": "acme", "tools": ["a/x"], "rename": {"b/y": "z"}}, SERVERS)
    with pytest.raises(SpecError, match="1-64 letters"):
        parse_pack("p", {"project": "acme", "tools": ["a/x"], "rename": {"a/x": "has space"}}, SERVERS)
    with pytest.raises(SpecError) as info:
        parse_pack("p", {"tools": ["a/x"]}, SERVERS)
    assert info.value.key == "project"


def test_config_section_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("mcp:\n  servers:\n    docs:\n      url: ftp://x\n")
    with pytest.raises(ConfigError, match=r"mcp\.servers\.docs\.url"):
        McpSettings.from_settings(load_settings(path, vendor_table=VENDOR_TABLE))
    path.write_text("mcp:\n  servers:\n    docs: {url: 'http://h/mcp', headers: {A: '${NOPE_NOT_SET}'}}\n")
    with pytest.raises(ConfigError, match="NOPE_NOT_SET is not set"):
        McpSettings.from_settings(load_settings(path, vendor_table=VENDOR_TABLE))
    path.write_text("mcp:\n  servers:\n    docs: {url: 'http://h/mcp', headers: {A: 'Bearer ${TOK}'}}\n"
                    "  tool_packs:\n    s: {project: p, tools: [docs/search]}\n")
    settings = load_settings(path, vendor_table=VENDOR_TABLE, environ={"TOK": "t1"})
    mcp = McpSettings.from_settings(settings)
    assert mcp.servers["docs"].headers == {"A": "Bearer t1"}
    assert "t1" not in str(mcp.servers["docs"].public())  # the admin API lists header names only
    # An OAuth client secret is a ${VAR} reference too (docs/guides/mcp.md).
    path.write_text("mcp:\n  servers:\n    cal:\n      url: 'http://h/mcp'\n      per_user: {type: oauth, "
                    "token_url: 'https://auth/token', client_id: c, client_secret: '${CAL_SECRET}'}\n")
    mcp = McpSettings.from_settings(load_settings(path, vendor_table=VENDOR_TABLE, environ={"CAL_SECRET": "s3"}))
    oauth = mcp.servers["cal"].per_user.oauth  # type: ignore[union-attr]
    assert oauth is not None and oauth.client_secret == "s3"
    with pytest.raises(ConfigError, match="CAL_SECRET is not set"):
        McpSettings.from_settings(load_settings(path, vendor_table=VENDOR_TABLE, environ={}))


def test_credential_fingerprints_separate_users() -> None:
    one = Access({"Authorization": "Bearer a"}, {})
    assert one.fingerprint() == Access({"Authorization": "Bearer a"}, {}).fingerprint()
    assert one.fingerprint() != Access({"Authorization": "Bearer b"}, {}).fingerprint()
    assert Access({}, {"K": "a"}).fingerprint() != Access({"K": "a"}, {}).fingerprint()


class FakeExchange:
    def __init__(self) -> None:
        self.path, self.method, self.query = "/x", "POST", "a=1"
        self.headers: dict[str, str] = {"content-type": "application/json", "mcp-session-id": "s"}
        self.responded = False
        self.sent: tuple[int, bytes, list[tuple[str, str]]] | None = None
        self.chunks: list[bytes] = []
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def client_host(self) -> str:
        return "127.0.0.1"

    @property
    def tls(self) -> bool:
        return False

    def send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.responded = True
        self.sent = (status, body, headers)

    def stream(self, status: int, headers: list[tuple[str, str]]) -> Any:
        self.responded = True
        self.sent = (status, b"", headers)
        outer = self

        class Out:
            async def send_bytes(self, data: bytes) -> None:
                outer.chunks.append(data)

        return Out()

    def client_disconnect(self) -> asyncio.Future[None]:
        return self.gone


async def test_bridge_answers_once_or_streams() -> None:
    ex = FakeExchange()

    async def single(scope: Any, receive: Any, send: Any) -> None:
        assert scope["method"] == "POST" and scope["query_string"] == b"a=1" and scope["marker"] == 1
        assert (b"mcp-session-id", b"s") in scope["headers"]
        assert await receive() == {"type": "http.request", "body": b"{}", "more_body": False}
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    await Bridge(ex, b"{}").run(single, asgi_scope(ex, {"marker": 1}))  # type: ignore[arg-type]
    assert ex.sent == (202, b"ok", [("content-type", "application/json")])

    ex = FakeExchange()

    async def streamed(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"event: a\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"event: b\n\n", "more_body": True})
        ex.gone.set_result(None)  # the client leaves: the app hears it on its next receive()
        assert await receive() == {"type": "http.disconnect"}
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    await Bridge(ex, b"{}").run(streamed, asgi_scope(ex, {}))  # type: ignore[arg-type]
    assert ex.sent is not None and ex.sent[0] == 200 and ex.chunks == [b"event: a\n\n", b"event: b\n\n"]


def test_refusals_are_jsonrpc_errors() -> None:
    body = orjson.loads(jsonrpc_error_body(NotFound("Unknown tool pack 'x'.", param="tool_pack",
                                                   code="unknown_tool_pack")))
    assert body == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32004, "message": "Unknown tool pack 'x'.",
        "data": {"type": "unknown_tool_pack", "status": 404, "param": "tool_pack"}}}


def test_function_names_fit_openai_rules_and_stay_unique() -> None:
    taken: dict[str, object] = {}
    first = _function_name("docs", "a.b/c", taken)
    assert first == "docs__a_b_c"
    taken[first] = 1
    assert _function_name("docs", "a.b/c", taken) == "docs__a_b_c_2"
    assert len(_function_name("l" * 40, "t" * 40, {})) == 64


def test_usage_is_summed_over_rounds() -> None:
    a = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12, "input_tokens_details": {"cached_tokens": 1}}
    total = _add_usage(_add_usage(None, a), {**a, "input_tokens": 5, "total_tokens": 7})
    assert total == {"input_tokens": 15, "output_tokens": 4, "total_tokens": 19,
                     "input_tokens_details": {"cached_tokens": 2}}
    assert a["input_tokens"] == 10  # the first round's object is not modified


def test_loop_answer_as_responses_events() -> None:
    answer = {"id": "resp_1", "object": "response", "status": "completed", "output": [
        {"id": "mcpl_1", "type": "mcp_list_tools", "server_label": "s", "tools": [{"name": "t"}], "error": None},
        {"id": "mcp_1", "type": "mcp_call", "server_label": "s", "name": "t", "arguments": "{}", "output": "o",
         "error": None, "status": "completed"},
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "done", "annotations": []}]}]}
    kinds = [orjson.loads(e.split(b"data: ", 1)[1])["type"] for e in events(answer)]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed",
        "response.output_item.done",
        "response.output_item.added", "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress", "response.mcp_call.completed", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    sequence = [orjson.loads(e.split(b"data: ", 1)[1])["sequence_number"] for e in events(answer)]
    assert sequence == list(range(len(kinds)))
