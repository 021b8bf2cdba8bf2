"""Sessions with upstream MCP servers, through the official SDK's clients (streamable HTTP, SSE, stdio).

One :class:`Upstream` is one initialized ``ClientSession`` with one server under one credential (a registered
user's own key reaches only sessions opened with it). Its transport and session are entered and left by a task
of its own — the SDK's transports are anyio task groups whose cancel scopes must be exited by the task that
entered them — while tool calls from any request task go through the session. :class:`UpstreamPool` keeps
them by (server, credential fingerprint), opens one on first use (concurrent first callers share the opening),
drops one whose transport died (the next call opens a new one: no silent retry of a call that may have run),
and closes the least recently used past its bound and those idle for longer than ``idle_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from interlock.mcp.model import ServerSpec

log = logging.getLogger("interlock.mcp")


class UpstreamFailure(Exception):
    """An upstream could not answer: ``kind`` is ``timeout``, ``unavailable`` (could not connect or list) or
    ``failed`` (the connection died mid-call, or the server answered with a protocol error)."""

    def __init__(self, server: str, kind: str, message: str) -> None:
        super().__init__(f"MCP server {server!r}: {message}")
        self.server = server
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Access:
    """What one session is opened with: HTTP headers or a child's environment (static + the user's own)."""

    headers: Mapping[str, str]
    env: Mapping[str, str]

    def fingerprint(self) -> str:
        """A digest of the credential: the pool's key, so two users' credentials never share a session."""
        h = hashlib.sha256()
        for part in (sorted(self.headers.items()), sorted(self.env.items())):
            for k, v in part:
                h.update(k.encode() + b"\0" + v.encode() + b"\0")
            h.update(b"\1")
        return h.hexdigest()[:32]


def _transport(spec: ServerSpec, access: Access) -> AbstractAsyncContextManager[Any]:
    if spec.transport == "stdio":
        env = {**spec.env, **access.env}
        params = StdioServerParameters(command=spec.command[0], args=list(spec.command[1:]), env=env or None,
                                       cwd=spec.cwd)
        return stdio_client(params)
    assert spec.url is not None
    if spec.transport == "sse":
        return sse_client(spec.url, headers=dict(access.headers), timeout=spec.connect_timeout_s,
                          sse_read_timeout=max(spec.timeout_s, 60.0))
    return _streamable(spec.url, access.headers, spec)


#: How long closing an upstream's SSE answer early may wait for the rest of its body (see _DrainOnClose).
DRAIN_S = 0.5


class _DrainOnClose(httpx2.AsyncByteStream):
    """An SSE answer to a POST that, closed before its end, reads the rest first.

    The SDK's client closes the answer to a request as soon as it has read the response event; the server
    ends the body right after, but closing before that end makes httpx drop the connection, so every call
    opened a new TCP connection (bench/mcp_tools.py). Reading the few remaining bytes first keeps the
    connection for the next call. Bounded by ``DRAIN_S``; a body that goes on is closed as before."""

    def __init__(self, inner: httpx2.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            async with asyncio.timeout(DRAIN_S):
                async for _ in self._inner:
                    pass
        except (TimeoutError, httpx2.HTTPError, OSError):
            pass  # not drained: closing drops the connection, as without this class
        await self._inner.aclose()


class _Draining(httpx2.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if request.method == "POST" and response.headers.get("content-type", "").startswith("text/event-stream"):
            response.stream = _DrainOnClose(response.stream)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@contextlib.asynccontextmanager
async def _streamable(url: str, headers: Mapping[str, str], spec: ServerSpec) -> AsyncIterator[Any]:
    timeout = httpx2.Timeout(spec.connect_timeout_s, read=max(spec.timeout_s, spec.connect_timeout_s) + 5.0)
    async with httpx2.AsyncClient(headers=dict(headers), timeout=timeout, transport=_Draining()) as client, \
            streamable_http_client(url, http_client=client) as streams:
        yield streams


class Upstream:
    """One live session, owned by its task (see the module docstring)."""

    def __init__(self, spec: ServerSpec, access: Access) -> None:
        self.spec = spec
        self.access = access
        self.last_used = time.monotonic()
        self._session: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._own(), name=f"mcp-upstream-{spec.name}")
        #: (time listed, tools): tools/list is asked again after ``LIST_TTL_S``.
        self._tools: tuple[float, list[types.Tool]] | None = None

    @property
    def dead(self) -> bool:
        return self._task.done()

    async def _own(self) -> None:
        try:
            async with _transport(self.spec, self.access) as streams, ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                self._session.set_result(s)
                await self._stop.wait()
        except BaseException as exc:
            if not self._session.done():
                self._session.set_exception(_unavailable(self.spec.name, exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("MCP server %r: connection ended: %s", self.spec.name, _describe(exc))

    async def session(self) -> ClientSession:
        try:
            async with asyncio.timeout(self.spec.connect_timeout_s):
                return await asyncio.shield(self._session)
        except TimeoutError:
            await self.close()
            raise UpstreamFailure(self.spec.name, "timeout",
                                  f"did not finish initialize within {self.spec.connect_timeout_s:g} s") from None

    async def list_tools(self) -> list[types.Tool]:
        cached = self._tools
        now = time.monotonic()
        if cached is not None and now - cached[0] < LIST_TTL_S:
            return cached[1]
        session = await self.session()
        tools: list[types.Tool] = []
        cursor: str | None = None
        try:
            async with asyncio.timeout(self.spec.connect_timeout_s):
                for _ in range(100):  # pages; a server that never stops paginating is cut off
                    params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                    page = await session.list_tools(params=params)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
        except TimeoutError:
            raise UpstreamFailure(self.spec.name, "timeout",
                                  f"tools/list took longer than {self.spec.connect_timeout_s:g} s") from None
        except MCPError as exc:
            raise UpstreamFailure(self.spec.name, "failed", f"tools/list failed: {exc.message}") from None
        except Exception as exc:  # noqa: BLE001 - the transport's own errors (HTTP, process, stream closed)
            await self.close()
            raise UpstreamFailure(self.spec.name, "unavailable", f"tools/list failed: {_describe(exc)}") from None
        self._tools = (now, tools)
        self.last_used = now
        return tools

    async def call(self, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        session = await self.session()
        self.last_used = time.monotonic()
        timeout = self.spec.timeout_s
        try:
            # The SDK's own read timeout first (it cancels the request upstream); ours one second later.
            async with asyncio.timeout(timeout + 1.0):
                return await session.call_tool(name, arguments, read_timeout_seconds=timeout)
        except TimeoutError:
            raise UpstreamFailure(self.spec.name, "timeout", f"{name} took longer than {timeout:g} s") from None
        except MCPError as exc:
            if _is_timeout(exc):
                raise UpstreamFailure(self.spec.name, "timeout", f"{name} took longer than {timeout:g} s") from None
            if self.dead or exc.code == CONNECTION_CLOSED:
                await self.close()  # the next call opens a new session (a new child, for stdio)
                raise UpstreamFailure(self.spec.name, "failed",
                                      f"the connection ended during {name}: {exc.message}") from None
            raise UpstreamFailure(self.spec.name, "failed", f"{name} failed: {exc.message}") from None
        except Exception as exc:  # noqa: BLE001 - the transport's own errors: this session is done
            await self.close()
            raise UpstreamFailure(self.spec.name, "failed",
                                  f"the connection ended during {name}: {_describe(exc)}") from None

    async def close(self) -> None:
        self._stop.set()
        if not self._task.done():
            try:
                async with asyncio.timeout(5.0):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
            except Exception as exc:  # noqa: BLE001 - already logged by _own; closing goes on
                log.debug("MCP server %r: close: %s", self.spec.name, _describe(exc))


#: How long one upstream session's tools/list answer is reused.
LIST_TTL_S = 30.0


class UpstreamPool:
    """Live sessions by (server, credential); see the module docstring."""

    def __init__(self, max_sessions: int = 256, idle_s: float = 300.0) -> None:
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self._sessions: OrderedDict[tuple[str, str], Upstream] = OrderedDict()
        self._reaper: asyncio.Task[None] | None = None

    def get(self, spec: ServerSpec, access: Access) -> Upstream:
        key = (spec.name, access.fingerprint())
        upstream = self._sessions.get(key)
        if upstream is not None and upstream.spec == spec and not upstream.dead:
            self._sessions.move_to_end(key)
            return upstream
        if upstream is not None:  # died, or its definition changed: a new session
            self._retire(self._sessions.pop(key))
        upstream = self._sessions[key] = Upstream(spec, access)
        while len(self._sessions) > self.max_sessions:
            self._retire(self._sessions.popitem(last=False)[1])
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap(), name="mcp-upstream-reaper")
        return upstream

    def _retire(self, upstream: Upstream) -> None:
        task = asyncio.create_task(upstream.close())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    async def _reap(self) -> None:
        while self._sessions:
            await asyncio.sleep(min(self.idle_s, 30.0))
            now = time.monotonic()
            for key, upstream in list(self._sessions.items()):
                if upstream.dead or now - upstream.last_used > self.idle_s:
                    self._retire(self._sessions.pop(key))

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


#: Sessions being closed in the background (kept referenced until they are).
_closing: set[asyncio.Task[None]] = set()


def _is_timeout(exc: MCPError) -> bool:
    return exc.code == REQUEST_TIMEOUT


def _unavailable(server: str, exc: BaseException) -> UpstreamFailure:
    return UpstreamFailure(server, "unavailable", f"could not connect and initialize: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    """A short text for an exception, unwrapping the exception groups anyio's task groups raise."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text[:300]
