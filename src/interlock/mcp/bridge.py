"""One interlock HTTP exchange as an ASGI call, for the MCP SDK's streamable-HTTP session manager.

interlock's servers (the native one, Granian) hand the app RSGI-shaped exchanges (``core/exchange.py``);
the official ``mcp`` SDK serves streamable HTTP as an ASGI application. This adapter is the glue and nothing
more: the scope is built from the exchange, ``receive`` yields the (already size-limited) body once and then
waits for the client to leave, and ``send`` answers with one body or, when the SDK streams (SSE), with a
streamed response whose pieces are written as they come. The stream ends when the SDK's handler returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from interlock.core import exchange
from interlock.core.exchange import Exchange, StreamOut

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def asgi_scope(ex: Exchange, extra: dict[str, Any]) -> Scope:
    """The ASGI HTTP scope of ``ex``; ``extra`` is merged in (the caller's identity, for the MCP handlers)."""
    headers = [(str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in ex.headers.items()]
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": ex.method, "scheme": "https" if ex.tls else "http", "path": ex.path,
        "raw_path": ex.path.encode("latin-1", "replace"), "query_string": ex.query.encode("latin-1", "replace"),
        "root_path": "", "headers": headers, "client": (ex.client_host, 0), "server": None, "state": {},
    }
    scope.update(extra)
    return scope


class Bridge:
    """Runs one ASGI call over one exchange (``await Bridge(ex, body).run(app, scope)``)."""

    __slots__ = ("_body", "_ex", "_gone", "_sent_body", "_start", "_stream")

    def __init__(self, ex: Exchange, body: bytes) -> None:
        self._ex = ex
        self._body: bytes | None = body
        self._start: tuple[int, list[tuple[str, str]]] | None = None
        self._stream: StreamOut | None = None
        self._sent_body = False
        self._gone = asyncio.Event()

    async def run(self, app: AsgiApp, scope: Scope) -> None:
        disconnect = self._ex.client_disconnect()
        disconnect.add_done_callback(self._on_disconnect)
        try:
            await app(scope, self._receive, self._send)
        finally:
            disconnect.remove_done_callback(self._on_disconnect)
        if not self._ex.responded and self._start is not None:
            # The app ended after the start message without a body message: an empty answer.
            status, headers = self._start
            self._ex.send(status, b"", headers)

    def _on_disconnect(self, _: object) -> None:
        self._gone.set()

    async def _receive(self) -> Message:
        body = self._body
        if body is not None:
            self._body = None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())
                       if k.lower() not in (b"content-length", b"transfer-encoding", b"connection")]
            self._start = (int(message["status"]), headers)
            return
        if kind != "http.response.body" or self._start is None:
            return
        chunk = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        if self._stream is None:
            if not more and not self._sent_body:
                self._sent_body = True
                status, headers = self._start
                self._ex.send(status, chunk, headers)
                return
            status, headers = self._start
            self._stream = self._ex.stream(status, headers)
        if chunk:
            try:
                await self._stream.send_bytes(chunk)
            except exchange.CLIENT_GONE:
                # The client left mid-stream: tell the app on its next receive(), drop what it still sends.
                self._gone.set()
