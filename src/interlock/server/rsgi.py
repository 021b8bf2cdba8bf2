"""The request and response objects interlock's HTTP/1.1 server (``h1.py``) hands the app.

They have the shape of Granian's RSGI objects (the subset ``server/http.py``
declares), so the gateway runs unchanged under either engine: a ``Scope``
(method, raw path, query string, lower-case headers) and an ``Exchange`` that
reads the body (``await proto()`` or ``async for chunk in proto``), answers with
``response_bytes``/``response_str`` or ``response_stream`` (a ``StreamOut``),
and reports a client going away through ``client_disconnect()``. The
connection (``H1Connection``) feeds the body in and writes what they produce.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from interlock.server.refusals import ClientGone

if TYPE_CHECKING:  # h1 imports this module: a cycle inside the server package, for a type only
    from interlock.server.h1 import H1Connection


#: The interim answer to ``Expect: 100-continue``.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Clock:
    """The ``Date`` header, rebuilt at most once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def date(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\nserver: interlock\r\n"
        return self._value


class Scope:
    """What the app knows of a request before reading its body."""

    __slots__ = ("_conn", "headers", "http_version", "method", "path", "query_string")

    proto = "http"
    scheme = "http"

    def __init__(self, conn: H1Connection, method: str, path: str, query: str, version: str,
                 headers: dict[str, str]) -> None:
        self._conn = conn
        self.method = method
        self.path = path
        self.query_string = query
        self.http_version = version
        self.headers = headers

    @property
    def client(self) -> str:
        peer = self._conn.peer()
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""


class Exchange:
    """One request's RSGI protocol object: the body in, the response out."""

    __slots__ = ("_chunks", "_conn", "_disconnect", "_failure", "_waiter", "body_done", "expect_continue",
                 "head_only", "http11", "keep_alive", "responded", "stream_open", "unread")

    def __init__(self, conn: H1Connection, keep_alive: bool, head_only: bool, http11: bool = True) -> None:
        self._conn = conn
        self._chunks: list[bytes] = []
        self._waiter: asyncio.Future[None] | None = None
        self._disconnect: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
        self.body_done = False
        self.keep_alive = keep_alive
        self.head_only = head_only
        #: HTTP/1.1 (chunked streaming answers) or 1.0 (close-delimited); per request, as pipelined ones may differ.
        self.http11 = http11
        #: ``Expect: 100-continue``: the interim answer is sent when the app first waits for the body.
        self.expect_continue = False
        self.responded = False
        self.stream_open = False
        self.unread = 0  # bytes received and not yet handed to the app

    # -- the body, fed by the connection --------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self.unread += len(data)
        self._wake()

    def end(self) -> None:
        self.body_done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def fail(self, failure: BaseException) -> None:
        """The body will not arrive: a reader waiting for it (now or later) gets ``failure``."""
        self._failure = failure
        self._wake()

    def _check_failure(self) -> None:
        # A method, not an inline check: mypy would carry the narrowing of ``self._failure`` to None from
        # before the ``await`` to after it, and the compiled build (make fast) checks that type at run time.
        failure = self._failure
        if failure is not None:
            raise failure

    async def _wait(self) -> None:
        self._check_failure()
        if self._conn.closed:
            raise ClientGone("the client closed the connection before sending the whole body")
        if self.expect_continue:
            self.expect_continue = False
            if not self.responded:
                self._conn.write(CONTINUE)
        waiter = self._waiter = self._conn.loop.create_future()
        self._conn.want_body()
        await waiter
        self._check_failure()

    def _take(self) -> list[bytes]:
        chunks, self._chunks = self._chunks, []
        self.unread = 0
        self._conn.want_body()
        return chunks

    # -- the body, read by the app -------------------------------------------------------

    def __call__(self) -> Coroutine[Any, Any, bytes]:
        return self._read()

    async def _read(self) -> bytes:
        while not self.body_done:
            await self._wait()
        chunks = self._take()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _BodyChunks(self)

    def client_disconnect(self) -> asyncio.Future[None]:
        future = self._disconnect
        if future is None:
            future = self._disconnect = self._conn.loop.create_future()
            if self._conn.closed:
                future.set_result(None)
        return future

    def gone(self) -> None:
        """The connection closed: wake a body reader and resolve the disconnect future."""
        self._wake()
        future = self._disconnect
        if future is not None and not future.done():
            future.set_result(None)

    # -- the response ---------------------------------------------------------------------

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        if not self._start():
            return
        # 204 and 304 have no body by definition; a 304's Content-Length would have to be the 200's (RFC 9110 8.6).
        framing = b"" if status in (204, 304) else b"content-length: %d\r\n" % len(body)
        head = self._conn.head(status, headers, self.keep_alive, framing, self.http11)
        if self.head_only or not body:
            self._conn.write(head)
        elif len(body) < 65536:
            self._conn.write(head + body)
        else:
            self._conn.write(head)
            self._conn.write(body)

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.response_bytes(status, headers, body.encode())

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.response_bytes(status, headers, b"")

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> StreamOut:
        self._start()
        chunked = self.http11
        if not chunked:
            self.keep_alive = False  # HTTP/1.0: the body ends when the connection does
        framing = b"transfer-encoding: chunked\r\n" if chunked and not self.head_only else b""
        self._conn.write(self._conn.head(status, headers, self.keep_alive, framing, self.http11))
        self.stream_open = not self.head_only
        return StreamOut(self._conn, chunked and not self.head_only, self.head_only)

    def _start(self) -> bool:
        """Whether to write the answer: not when the connection is gone (the server may have refused the body)."""
        if self._conn.closed:
            self.responded = True
            return False
        if self.responded:
            raise RuntimeError("a response was already started for this request")
        self.responded = True
        if not self.body_done or self._conn.server.stopping:
            self.keep_alive = False  # the rest of the body is not worth reading, or the worker stops
        return True


class _BodyChunks:
    """``async for chunk in exchange``: the body's chunks as they arrive (a class, not an async generator,
    which mypyc cannot compile: make fast)."""

    __slots__ = ("_exchange", "_taken")

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        #: Chunks taken from the exchange and not handed out yet, last first.
        self._taken: list[bytes] = []

    def __aiter__(self) -> _BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        exchange = self._exchange
        while True:
            if self._taken:
                return self._taken.pop()
            if exchange._chunks:
                self._taken = exchange._take()[::-1]
            elif exchange.body_done:
                raise StopAsyncIteration
            else:
                await exchange._wait()


class StreamOut:
    """The writer ``response_stream`` returns: each ``send_bytes`` is one HTTP chunk."""

    __slots__ = ("_chunked", "_conn", "_discard")

    def __init__(self, conn: H1Connection, chunked: bool, discard: bool) -> None:
        self._conn = conn
        self._chunked = chunked
        self._discard = discard

    async def send_bytes(self, data: bytes) -> None:
        conn = self._conn
        if conn.closed:
            raise ClientGone("the client closed the connection")
        if not data or self._discard:
            return
        conn.write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)
        if conn.paused:
            await conn.drain()

    async def send_str(self, data: str) -> None:
        await self.send_bytes(data.encode())
