"""Listing a pack's tools and running one tool call: credentials, limits, guardrails, the record.

A call goes: the caller's rate limit (``tool_calls_per_minute``) → the pack's tool (unknown: an MCP error
naming the pack's tools) → the guardrails on the arguments → the upstream, with the registered user's
credential (``access.py``) → the guardrails on the result (where indirect injection hides) → the result.
Refusals (unknown tool, blocked, rate limited, no credential) are JSON-RPC errors; an upstream that times out
or fails is a tool result with ``isError`` (the MCP spec's place for execution errors, which a model can read
and act on). Every call is one record in the call log and counted in ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson
from mcp import types
from mcp.shared.exceptions import MCPError

from interlock.core.errors import GatewayError
from interlock.core.principal import Principal
from interlock.guardrails.guard import Detection, Guard, Guards, Piece, Placeholders, Unavailable, redact
from interlock.mcp.access import CredentialProblem, Credentials
from interlock.mcp.auth import Caller, Registry
from interlock.mcp.model import ServerSpec, ToolCall
from interlock.mcp.packs import ListingFailed, PackListing, list_pack
from interlock.mcp.upstream import UpstreamFailure, UpstreamPool
from interlock.observability.metrics import Registry as Metrics
from interlock.pipeline.guard import off_loop

log = logging.getLogger("interlock.mcp")

#: JSON-RPC error codes of the gateway's refusals (implementation-defined range).
BLOCKED = -32010
RATE_LIMITED = -32029
NO_CREDENTIAL = -32012
GUARD_UNAVAILABLE = -32013
#: The most of a result or arguments the call log keeps (content level only).
MAX_LOGGED = 64 * 1024


class CallSink(Protocol):
    def submit(self, call: ToolCall) -> None: ...


Admission = Callable[[Principal], Awaitable[None]]


class ToolRunner:
    def __init__(self, registry: Registry, credentials: Credentials, pool: UpstreamPool, guards: Guards,
                 sink: CallSink, metrics: Metrics, admission: Admission | None = None,
                 count_guardrail: Callable[[str, str, str], None] | None = None) -> None:
        self.registry = registry
        self.credentials = credentials
        self.pool = pool
        self.guards = guards
        self.sink = sink
        self.admission = admission
        self.count_guardrail = count_guardrail
        self.calls = metrics.counter("interlock_mcp_tool_calls_total",
                                     "MCP tool calls through the gateway, by tool pack, server and status.",
                                     ("pack", "server", "status"))
        self.seconds = metrics.histogram("interlock_mcp_tool_call_seconds",
                                         "Duration of MCP tool calls through the gateway, by server.", ("server",))
        self.list_errors = metrics.counter("interlock_mcp_list_errors_total",
                                           "Upstream MCP servers that failed to list their tools, by server.",
                                           ("server",))
        #: Each server's last good listing (tool names do not depend on the credential): a server that cannot
        #: list now keeps its tools' names, and the other servers' names do not change meanwhile.
        self._known: dict[str, list[types.Tool]] = {}

    async def close(self) -> None:
        await self.pool.close()

    # ---------------------------------------------------------------------------------- listing

    async def list_tools(self, caller: Caller, servers: Mapping[str, ServerSpec] | None = None) -> PackListing:
        """The pack's tools; ``servers``: definitions to use instead of the registry's (a request's own URL)."""
        if servers is None:
            servers, _ = await self.registry.current()

        async def lister(server: str) -> list[types.Tool]:
            spec = servers.get(server)
            if spec is None:
                raise ListingFailed(server, "the server is no longer defined")
            try:
                access = await self.credentials.access(spec, caller)
                tools = await self.pool.get(spec, access).list_tools()
                self._known[server] = tools
                return tools
            except (UpstreamFailure, CredentialProblem) as exc:
                self.list_errors.inc(("request" if caller.pack.source == "request" else server,))
                log.warning("tool pack %r: server %r could not list its tools: %s", caller.pack.id, server, exc)
                raise ListingFailed(server, str(exc), exc if isinstance(exc, CredentialProblem) else None) from None

        return await list_pack(caller.pack, lister, self._known)

    # ------------------------------------------------------------------------------------- a call

    async def call_tool(self, caller: Caller, name: str, arguments: dict[str, Any] | None,
                        servers: Mapping[str, ServerSpec] | None = None) -> types.CallToolResult:
        args_text = orjson.dumps(arguments or {})
        record = ToolCall(id="tc_" + secrets.token_hex(12), at=time.time(), project=caller.project,
                          key_id=caller.key_id, pack=caller.pack.id, user=caller.user, server="", tool="",
                          name=name, args_bytes=len(args_text))
        started = time.perf_counter()
        try:
            result = await self._call(caller, name, dict(arguments or {}), record, servers)
            record.result_bytes = len(orjson.dumps(result.model_dump(mode="json", by_alias=True,
                                                                     exclude_none=True)))
            if caller.content:
                record.result = _clip(result.model_dump_json(by_alias=True, exclude_none=True))
            return result
        except MCPError as exc:
            record.error = exc.message
            raise
        except asyncio.CancelledError:
            record.status = "cancelled"
            raise
        finally:
            elapsed = time.perf_counter() - started
            record.duration_ms = round(elapsed * 1000.0, 3)
            # A request's own server (/v1/responses with an allowed external URL) is named by the request: one
            # label for all of them keeps the metrics' cardinality the operator's.
            external = caller.pack.source == "request"
            pack, server = ("request", "request") if external else (record.pack, record.server or "-")
            self.calls.inc((pack, server, record.status))
            if record.server:
                self.seconds.observe((server,), elapsed)
            self.sink.submit(record)

    async def _call(self, caller: Caller, name: str, arguments: dict[str, Any], record: ToolCall,
                    servers: Mapping[str, ServerSpec] | None) -> types.CallToolResult:
        if self.admission is not None:
            try:
                await self.admission(caller.principal)
            except GatewayError as exc:
                record.status = "rate_limited"
                raise MCPError(RATE_LIMITED, f"interlock: {exc.message}",
                               {"type": exc.code or "rate_limited", **dict(exc.headers)}) from None
        listing = await self.list_tools(caller, servers)
        tool = listing.by_name().get(name)
        if tool is None:
            record.status = "denied"
            known = ", ".join(sorted(listing.by_name())) or "none"
            down = f" (servers that could not list: {', '.join(sorted(listing.errors))})" if listing.errors else ""
            raise MCPError(types.INVALID_PARAMS, f"interlock: tool pack {caller.pack.id!r} has no tool {name[:64]!r}; "
                           f"its tools: {known}{down}", {"type": "unknown_tool"})
        record.server, record.tool = tool.server, tool.upstream_name
        if not tool.available:
            problem = listing.problems.get(tool.server)
            if isinstance(problem, CredentialProblem) and not problem.transient:
                record.status = "denied"
                raise MCPError(NO_CREDENTIAL, f"interlock: {problem}", {"type": problem.code, "server": tool.server})
            record.status = "upstream_error"
            record.error = listing.errors.get(tool.server)
            return _failed(f"interlock: {record.error}")
        guard = await self._guard(caller)
        if guard is not None:
            arguments = await self._screen(guard, record, arguments, "user", "arguments")
        if caller.content:
            record.arguments = _clip(orjson.dumps(arguments).decode())
        if servers is None:
            servers, _ = await self.registry.current()
        spec = servers.get(tool.server)
        if spec is None:
            record.status = "upstream_error"
            return _failed(f"interlock: the MCP server {tool.server!r} is no longer defined")
        try:
            access = await self.credentials.access(spec, caller)
        except CredentialProblem as exc:
            record.status = "denied"
            if exc.transient:
                record.status = "upstream_error"
                return _failed(f"interlock: {exc}")
            raise MCPError(NO_CREDENTIAL, f"interlock: {exc}", {"type": exc.code, "server": spec.name}) from None
        try:
            result = await self.pool.get(spec, access).call(tool.upstream_name, arguments)
        except UpstreamFailure as exc:
            record.status = "timeout" if exc.kind == "timeout" else "upstream_error"
            record.error = str(exc)
            return _failed(f"interlock: {exc}")
        if result.is_error:
            record.status = "error"
        if guard is not None:
            result = await self._screen_result(guard, record, result)
        return result

    # ------------------------------------------------------------------------------ guardrails

    async def _guard(self, caller: Caller) -> Guard | None:
        override = caller.principal.guardrails
        guard = self.guards.cached(override)
        if guard is None:
            guard = await off_loop(self.guards.get, override)
        return guard if guard.enabled and guard.configured() else None

    async def _run(self, guard: Guard, texts: list[Piece], found: list[Any]) -> list[Detection]:
        def run(_: object) -> list[Detection]:
            return guard.run(texts, guard.configured(), found=found)

        return await off_loop(run, None) if guard.uses_classifier else run(None)

    async def _screen(self, guard: Guard, record: ToolCall, value: Any, role: str, what: str) -> Any:
        """Scan every string of ``value`` (arguments, structured content); block, or redact in place."""
        holder: list[Any] = [value]
        texts = list(_strings(holder, 0, role))
        if not texts:
            return value
        found: list[Any] = []
        try:
            detections = await self._run(guard, texts, found)
        except Unavailable as exc:
            record.status = "blocked"
            raise MCPError(GUARD_UNAVAILABLE, f"interlock: the guardrail {exc.detector} could not check the tool "
                           f"call's {what} and fails closed", {"type": "guardrail_unavailable",
                                                               "detector": exc.detector}) from None
        self._record(record, detections, "tool_input" if what == "arguments" else "tool_output")
        for d in detections:
            if d.flagged and d.action == "block":
                record.status = "blocked"
                raise MCPError(BLOCKED, f"interlock: blocked by the {d.detector} guardrail in the tool call's {what}",
                               {"type": "content_blocked", "detector": d.detector, "where": what})
        redacted = {t for d in detections if d.flagged and d.action == "redact" for t in d.entities}
        if redacted:
            redact(found, redacted.__contains__, Placeholders())
        return holder[0]

    async def _screen_result(self, guard: Guard, record: ToolCall, result: types.CallToolResult
                             ) -> types.CallToolResult:
        texts = [b.text for b in result.content if isinstance(b, types.TextContent)]
        screened = await self._screen(guard, record, {"content": texts, "structured": result.structured_content},
                                      "tool", "result")
        new_texts = iter(screened["content"])
        content = [b.model_copy(update={"text": next(new_texts)}) if isinstance(b, types.TextContent) else b
                   for b in result.content]
        return result.model_copy(update={"content": content, "structured_content": screened["structured"]})

    def _record(self, record: ToolCall, detections: list[Detection], direction: str) -> None:
        if not detections:
            return
        record.guardrails = [*(record.guardrails or ()), *({**d.record(), "direction": direction}
                                                             for d in detections)]
        if self.count_guardrail is not None:
            for d in detections:
                self.count_guardrail(d.detector, "unchecked" if d.unchecked else d.action, direction)


def _strings(holder: Any, key: Any, role: str, depth: int = 0) -> Any:
    """A :class:`Piece` for every string leaf of ``holder[key]`` (written back through holder/key)."""
    value = holder[key]
    if isinstance(value, str):
        if value:
            yield Piece(value, None, role, holder, key)
    elif depth < 32 and isinstance(value, dict):
        for k in value:
            yield from _strings(value, k, role, depth + 1)
    elif depth < 32 and isinstance(value, list):
        for i in range(len(value)):
            yield from _strings(value, i, role, depth + 1)


def _failed(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LOGGED else text[:MAX_LOGGED] + "…[truncated]"
