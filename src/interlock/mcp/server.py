"""The MCP endpoint: ``/api/v1/tool-packs/{pack}/registered-users/{user}/mcp``, streamable HTTP.

The protocol is the official SDK's (``mcp.server.lowlevel.Server`` behind a ``StreamableHTTPSessionManager``,
reached through ``bridge.py``); interlock adds who may call (``auth.py``), which tools a pack exposes
(``packs.py``), with whose credentials they run (``access.py``), and what is checked and recorded around each
call (``calls.py``). A session is bound to the credential, pack and registered user that opened it: the
SDK answers 404 to a request for it that presents another (``scope["user"]``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import orjson
from mcp import types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from interlock import __version__
from interlock.core.errors import GatewayError, NotFound
from interlock.core.exchange import Exchange
from interlock.mcp.auth import Caller, McpAuth
from interlock.mcp.bridge import Bridge, asgi_scope
from interlock.mcp.calls import ToolRunner
from interlock.mcp.packs import PackListing

log = logging.getLogger("interlock.mcp")

PATH_RE = re.compile(r"^/api/v1/tool-packs/([^/]+)/registered-users/([^/]+)/mcp/?$")
#: The scope key the bridge sets for the SDK's handlers (read back through ``ctx.request.scope``).
SCOPE_KEY = "interlock.mcp"
#: JSON-RPC codes of the HTTP-level refusals (the SDK's own range, -32000..-32099, is implementation-defined).
HTTP_CODES = {400: -32600, 401: -32001, 403: -32003, 404: -32004, 405: -32601, 413: -32600, 429: -32029}


class McpStarting(GatewayError):
    """The session manager is not running yet (the first moments of a worker)."""

    status = 503
    type = "api_error"
    code = "mcp_starting"


def jsonrpc_error_body(err: GatewayError) -> bytes:
    """A refusal before the MCP session (auth, unknown pack or user) as a JSON-RPC error object."""
    data: dict[str, Any] = {"type": err.code or err.type, "status": err.status}
    if err.param:
        data["param"] = err.param
    return orjson.dumps({"jsonrpc": "2.0", "id": None,
                         "error": {"code": HTTP_CODES.get(err.status, -32603), "message": err.message,
                                   "data": data}})


class McpEndpoint:
    """The route handler and the SDK server it feeds; one per worker."""

    def __init__(self, auth: McpAuth, runner: ToolRunner, *, stateless: bool, max_body: int) -> None:
        self.auth = auth
        self.runner = runner
        self.server: Server[Any] = Server("interlock", version=__version__, on_list_tools=self._list_tools,
                                          on_call_tool=self._call_tool)
        # JSON answers, not an SSE stream per POST: a tool call's answer is one message (upstream progress is not
        # relayed), and the SSE machinery costs several milliseconds of CPU per call (bench/mcp_tools.py).
        self.manager = StreamableHTTPSessionManager(self.server, stateless=stateless, json_response=True,
                                                    max_request_body_size=max_body)
        self.max_body = max_body
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle (Gateway.__rsgi_init__ / __del__)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self._run(), name="mcp-session-manager")

    async def _run(self) -> None:
        try:
            async with self.manager.run():
                self._ready.set()
                await self._stop.wait()
        finally:
            self._ready.clear()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(10.0):
                    await self._task
            except TimeoutError:
                self._task.cancel()
                log.warning("the MCP session manager did not stop within 10 s; cancelled")
        await self.runner.close()

    # ------------------------------------------------------------------------------------- the route

    async def handle(self, ex: Exchange) -> None:
        match = PATH_RE.match(ex.path)
        if match is None:
            raise NotFound(f"Unknown MCP URL {ex.path[:200]!r}: use "
                           "/api/v1/tool-packs/{TOOL_PACK_ID}/registered-users/{REGISTERED_USER_ID}/mcp.")
        caller = await self.auth.caller(ex, match.group(1), match.group(2))
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(5.0):
                    await self._ready.wait()
            except TimeoutError:
                raise McpStarting("The MCP endpoint is starting; try again.") from None
        body = await ex.body(self.max_body) if ex.method == "POST" else b""
        # The session's owner: the credential and the (pack, user) it was opened for.
        owner = AuthenticatedUser(AccessToken(token=caller.key_id, client_id=caller.key_id, scopes=[],
                                              subject=f"{caller.pack.id}/{caller.user}"))
        scope = asgi_scope(ex, {SCOPE_KEY: caller, "user": owner})
        await Bridge(ex, body).run(self.manager.handle_request, scope)

    # ------------------------------------------------------------------------ the SDK's handlers

    @staticmethod
    def _caller(ctx: Any) -> Caller:
        request = getattr(ctx, "request", None)
        caller = request.scope.get(SCOPE_KEY) if request is not None else None
        if not isinstance(caller, Caller):  # only this endpoint's bridge reaches the server
            raise MCPError(types.INTERNAL_ERROR, "interlock: no caller for this MCP request")
        return caller

    async def _list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        caller = self._caller(ctx)
        listing = await self.runner.list_tools(caller)
        return listing_result(caller, listing)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await self.runner.call_tool(self._caller(ctx), params.name, params.arguments)


def listing_result(caller: Caller, listing: PackListing) -> types.ListToolsResult:
    """The pack's tools; servers that could not list are named in ``_meta`` (and an all-failed listing is an
    error, never an empty list)."""
    if listing.errors and not listing.available():
        detail = "; ".join(f"{s}: {m}" for s, m in listing.errors.items())
        raise MCPError(types.INTERNAL_ERROR, f"interlock: no server of tool pack {caller.pack.id!r} could list "
                       f"its tools: {detail}", {"type": "upstream_unavailable", "servers": listing.errors})
    meta = {"interlock/errors": [{"server": s, "error": m} for s, m in listing.errors.items()]} \
        if listing.errors else None
    return types.ListToolsResult(tools=[t.tool for t in listing.available()], _meta=meta)
