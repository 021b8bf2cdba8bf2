"""``/v1/responses`` with OpenAI's remote MCP tool, for any model: the gateway runs the tool loop itself.

A request whose ``tools`` hold ``{"type": "mcp", "server_label", "server_url", "allowed_tools",
"require_approval": "never"}`` is answered in rounds: the servers' tools are listed (``mcp_list_tools`` items)
and given to the model as functions; each function call the model makes to one of them is run through the MCP
gateway (``calls.ToolRunner``: limits, credentials, guardrails, the call log) and its output fed back, until the
model answers without calling one, calls a function of the caller's own (returned to the caller as usual), or
``mcp.max_tool_rounds`` / the request's ``max_tool_calls`` is reached. Each round is an ordinary Responses
request through the pipeline (routed, admitted, priced, logged); the answer is the last round's with every
round's ``mcp_list_tools``/``mcp_call`` items and output in order, and usage summed over the rounds.

``server_url`` is this gateway's MCP URL of a tool pack of the caller's project
(``/api/v1/tool-packs/{pack}/registered-users/{user}/mcp``, the host is not consulted) or an external URL
starting with one of ``mcp.allowed_server_urls`` (anything else is refused: no request reaches an address the
operator did not allow).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from mcp import types
from mcp.shared.exceptions import MCPError

from interlock.core.errors import GatewayError, InvalidRequest
from interlock.core.exchange import Disconnect, Exchange, Headers, StreamOut
from interlock.core.principal import Principal
from interlock.mcp.auth import Caller, McpAuth
from interlock.mcp.calls import ToolRunner
from interlock.mcp.model import PackSpec, ServerSpec, SpecError, parse_server
from interlock.mcp.responses_stream import stream_response
from interlock.mcp.server import PATH_RE
from interlock.mcp.settings import McpSettings

Handler = Callable[[Exchange], Awaitable[None]]
Authenticate = Callable[[Exchange], Principal]
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


class Replay:
    """The client's exchange with its body already read (``body()`` returns it), or with another body and
    answers captured instead of sent (one model round of the loop)."""

    def __init__(self, ex: Exchange, body: bytes, *, capture: bool = False) -> None:
        self._ex = ex
        self._body = body
        self._capture = capture
        self.path = ex.path
        self.method = ex.method
        self.query = ex.query
        self.headers: Headers = ex.headers
        self.responded = False
        self.status = 0
        self.answer = b""
        self.answer_headers: list[tuple[str, str]] = []

    def header(self, name: str) -> str | None:
        return self._ex.header(name)

    @property
    def client_host(self) -> str:
        return self._ex.client_host

    @property
    def tls(self) -> bool:
        return self._ex.tls

    async def body(self, limit: int) -> bytes:
        return self._body

    def send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.responded = True
        if not self._capture:
            self._ex.send(status, body, headers)
            return
        self.status, self.answer, self.answer_headers = status, body, headers

    def json(self, status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> None:
        self.send(status, orjson.dumps(data), [("content-type", "application/json"), *(headers or ())])

    def stream(self, status: int, headers: list[tuple[str, str]]) -> StreamOut:
        if self._capture:  # rounds are never streamed (the loop sets stream: false)
            raise RuntimeError("a captured round cannot stream")
        self.responded = True
        return self._ex.stream(status, headers)

    def client_disconnect(self) -> Disconnect:
        return self._ex.client_disconnect()


class _Server:
    """One ``mcp`` tool entry of the request, resolved."""

    def __init__(self, label: str, caller: Caller, servers: Mapping[str, ServerSpec] | None,
                 allowed: set[str] | None) -> None:
        self.label = label
        self.caller = caller
        self.servers = servers
        self.allowed = allowed
        self.tools: dict[str, str] = {}  # function name → the pack's tool name


class McpResponses:
    """The ``POST /v1/responses`` handler: the loop when the request has ``mcp`` tools, else the pipeline."""

    def __init__(self, inner: Handler, authenticate: Authenticate, auth: McpAuth, runner: ToolRunner,
                 settings: McpSettings, max_body: int) -> None:
        self.inner = inner
        self.authenticate = authenticate
        self.auth = auth
        self.runner = runner
        self.settings = settings
        self.max_body = max_body

    async def __call__(self, ex: Exchange) -> None:
        body = await ex.body(self.max_body)
        data: Any = None
        if body.find(b'"mcp"') >= 0:  # a cheap test first (find: bytes' `in` formats a TypeError first)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                data = None
        tools = data.get("tools") if isinstance(data, dict) else None
        if not isinstance(tools, list) or not any(isinstance(t, dict) and t.get("type") == "mcp" for t in tools):
            await self.inner(Replay(ex, body))  # everything else: the pipeline, and its own errors
            return
        assert isinstance(data, dict)
        principal = self.authenticate(ex)
        await self._loop(ex, data, tools, principal)

    async def _resolve(self, principal: Principal, tools: list[Any]) -> tuple[list[Any], list[_Server]]:
        kept: list[Any] = []
        servers: list[_Server] = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "mcp":
                kept.append(tool)
                continue
            where = f"tools[{i}]"
            label = tool.get("server_label")
            if not isinstance(label, str) or not label or _NAME_BAD.search(label):
                raise InvalidRequest(f"'{where}.server_label' must be a non-empty string of letters, digits, '_' "
                                     "or '-'.", param=f"{where}.server_label")
            if any(s.label == label for s in servers):
                raise InvalidRequest(f"Two mcp tools share the server_label {label!r}.",
                                     param=f"{where}.server_label")
            approval = tool.get("require_approval", "never")
            if approval != "never":
                raise InvalidRequest(f"'{where}.require_approval': interlock runs MCP tools without an approval "
                                     "round trip; set it to 'never' (and choose the tools with allowed_tools).",
                                     param=f"{where}.require_approval", code="unsupported_value")
            allowed = _allowed(tool.get("allowed_tools"), f"{where}.allowed_tools")
            url = tool.get("server_url")
            if not isinstance(url, str) or not url:
                raise InvalidRequest(f"'{where}.server_url' is required: this gateway's MCP URL of a tool pack, "
                                     "/api/v1/tool-packs/{pack}/registered-users/{user}/mcp.",
                                     param=f"{where}.server_url")
            caller, extra = await self._target(principal, tool, url, label, f"{where}.server_url")
            servers.append(_Server(label, caller, extra, allowed))
        return kept, servers

    async def _target(self, principal: Principal, tool: Mapping[str, Any], url: str, label: str,
                      where: str) -> tuple[Caller, Mapping[str, ServerSpec] | None]:
        match = PATH_RE.match(urlsplit(url).path)
        if match is not None:
            try:
                return await self.auth.for_principal(principal, match.group(1), match.group(2)), None
            except GatewayError as exc:
                raise InvalidRequest(f"'{where}': {exc.message}", param=where, code=exc.code) from None
        if not any(url.startswith(prefix) for prefix in self.settings.allowed_server_urls):
            raise InvalidRequest(f"'{where}' must name a tool pack of this gateway "
                                 "(/api/v1/tool-packs/{pack}/registered-users/{user}/mcp) or start with one of "
                                 "the operator's mcp.allowed_server_urls.", param=where, code="server_url_not_allowed")
        headers = dict(tool.get("headers") or {}) if isinstance(tool.get("headers"), dict) else {}
        authorization = tool.get("authorization")
        if isinstance(authorization, str) and authorization:
            headers["Authorization"] = f"Bearer {authorization}"
        try:
            spec = parse_server(label, {"url": url, "headers": headers}, source="request")
        except SpecError as exc:
            raise InvalidRequest(f"'{where}': {exc.message}", param=where) from None
        pack = PackSpec(f"request:{label}", principal.project or "", (f"{label}/*",), source="request")
        key_id = principal.key_id or principal.key_prefix
        return Caller(principal, pack, "", key_id, self.auth.content_for(principal)), {label: spec}

    async def _loop(self, ex: Exchange, data: dict[str, Any], tools: list[Any], principal: Principal) -> None:
        kept, servers = await self._resolve(principal, tools)
        items: list[dict[str, Any]] = []
        functions: list[dict[str, Any]] = []
        routes: dict[str, tuple[_Server, str]] = {}
        for server in servers:
            item, exposed = await self._list(server)
            items.append(item)
            for tool in exposed:
                name = _function_name(server.label, tool.name, routes)
                routes[name] = (server, tool.name)
                functions.append({"type": "function", "name": name, "description": tool.description or "",
                                  "parameters": tool.input_schema, "strict": False})
        history = _input_items(data.get("input"))
        max_calls = data.get("max_tool_calls")
        budget = max_calls if isinstance(max_calls, int) and not isinstance(max_calls, bool) and max_calls >= 0 \
            else None
        usage: dict[str, Any] | None = None
        calls_made = 0
        rounds = 0
        while True:
            rounds += 1
            round_body = {**data, "tools": [*kept, *functions], "input": history, "stream": False, "store": False}
            round_body.pop("max_tool_calls", None)
            if not kept and not functions:
                round_body.pop("tools")
                round_body.pop("tool_choice", None)
            replay = Replay(ex, orjson.dumps(round_body), capture=True)
            await self.inner(replay)
            if replay.status != 200:
                await self._answer(ex, data, replay.status, replay.answer, replay.answer_headers)
                return
            answer = orjson.loads(replay.answer)
            usage = _add_usage(usage, answer.get("usage"))
            output = answer.get("output") or []
            ours = [o for o in output if o.get("type") == "function_call" and o.get("name") in routes]
            theirs = [o for o in output if o.get("type") == "function_call" and o.get("name") not in routes]
            items.extend(o for o in output if o not in ours)
            if not ours or theirs:
                break
            if rounds >= self.settings.max_tool_rounds or (budget is not None and calls_made >= budget):
                answer["status"] = "incomplete"
                answer["incomplete_details"] = {"reason": "max_tool_calls"}
                break
            history.extend(o for o in output if o.get("type") in ("message", "function_call", "reasoning")
                           and not (o.get("type") == "function_call" and o.get("name") not in routes))
            if data.get("tool_choice") not in (None, "auto", "none"):
                # "required" (or one named function) asked for a call, and the model made one: from here on the
                # model may answer (else every round would call again until the round limit).
                data = {**data, "tool_choice": "auto"}
            for call in ours:
                if budget is not None and calls_made >= budget:
                    break
                calls_made += 1
                item, text = await self._call(routes[call["name"]], call)
                items.append(item)
                history.append({"type": "function_call_output", "call_id": call.get("call_id"), "output": text})
        answer["output"] = items
        answer["tools"] = tools
        if usage is not None:
            answer["usage"] = usage
        headers = [(k, v) for k, v in replay.answer_headers if k.lower() != "content-length"]
        headers.append(("x-interlock-mcp-rounds", str(rounds)))
        await self._answer(ex, data, 200, orjson.dumps(answer), headers, answer)

    async def _answer(self, ex: Exchange, data: Mapping[str, Any], status: int, body: bytes,
                headers: list[tuple[str, str]], answer: dict[str, Any] | None = None) -> None:
        if data.get("stream") is True and answer is not None:
            await stream_response(ex, answer, headers)
            return
        ex.send(status, body, headers)

    async def _list(self, server: _Server) -> tuple[dict[str, Any], list[types.Tool]]:
        item: dict[str, Any] = {"id": "mcpl_" + secrets.token_hex(12), "type": "mcp_list_tools",
                                "server_label": server.label, "tools": [], "error": None}
        try:
            listing = await self.runner.list_tools(server.caller, server.servers)
        except MCPError as exc:
            item["error"] = exc.message
            return item, []
        tools = [t.tool for t in listing.available() if server.allowed is None or t.name in server.allowed]
        item["tools"] = [{"name": t.name, "input_schema": t.input_schema, "description": t.description,
                          "annotations": t.annotations.model_dump(exclude_none=True) if t.annotations else None}
                         for t in tools]
        if listing.errors:
            item["error"] = "; ".join(f"{s}: {m}" for s, m in listing.errors.items())
        return item, tools

    async def _call(self, route: tuple[_Server, str], call: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        server, name = route
        arguments_text = call.get("arguments") if isinstance(call.get("arguments"), str) else "{}"
        item: dict[str, Any] = {"id": "mcp_" + secrets.token_hex(12), "type": "mcp_call",
                                "server_label": server.label, "name": name, "arguments": arguments_text,
                                "output": None, "error": None, "status": "completed", "approval_request_id": None}
        try:
            arguments = orjson.loads(arguments_text or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("not an object")
        except ValueError:
            item["error"] = "the model's arguments are not a JSON object"
            item["status"] = "failed"
            return item, f"error: {item['error']}"
        try:
            result = await self.runner.call_tool(server.caller, name, arguments, server.servers)
        except MCPError as exc:
            item["error"] = exc.message
            item["status"] = "failed"
            return item, f"error: {exc.message}"
        text = "".join(b.text for b in result.content if isinstance(b, types.TextContent))
        if result.is_error:
            item["error"] = text or "the tool reported an error"
            item["status"] = "failed"
            return item, f"error: {item['error']}"
        item["output"] = text
        return item, text


def _allowed(value: object, where: str) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("tool_names")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"'{where}' must be a list of tool names (or {{\"tool_names\": [...]}}).", param=where)
    return set(value)


def _function_name(label: str, tool: str, taken: Mapping[str, object]) -> str:
    """The function the model sees: ``<label>__<tool>``, cut to OpenAI's 64 characters and made unique."""
    base = _NAME_BAD.sub("_", f"{label}__{tool}")[:64]
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base[:60]}_{n}"
    return name


def _input_items(value: object) -> list[Any]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list):
        return list(value)
    return []


def _add_usage(total: dict[str, Any] | None, usage: object) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return total
    if total is None:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(usage))  # a deep copy of plain JSON
        return copied
    for key, value in usage.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and isinstance(total.get(key), int | float):
            total[key] += value
        elif isinstance(value, dict) and isinstance(total.get(key), dict):
            for k, v in value.items():
                if isinstance(v, int | float) and isinstance(total[key].get(k), int | float):
                    total[key][k] += v
    return total
