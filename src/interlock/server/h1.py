"""interlock's own HTTP/1.1 server: one asyncio protocol per connection, RSGI objects for the app.

Why our own: Granian runs its HTTP stack on Rust threads and hands every
request to the Python event loop across threads. On a worker pinned to one
core those threads compete with the loop, and the hand-offs (futures resolved
from another thread, eventfd wake-ups) cost more per request than parsing a
request head in Python. Here everything happens on the worker's one event
loop: bytes arrive in ``data_received``, the head is parsed, and the handler
task starts in the same loop turn.

The app sees the same interface as under Granian (the subset of RSGI that
``server/http.py`` declares; the objects are in ``rsgi.py``): a scope with ``method``, ``path`` (raw, not
percent-decoded), ``query_string`` and ``headers`` (lower-case names,
repeated headers joined with ", "), and a protocol object that reads the
body (``await proto()`` or ``async for chunk in proto``), answers with
``response_bytes``/``response_str`` or ``response_stream``, and reports a
client going away through ``client_disconnect()``.

What it does: HTTP/1.1 and 1.0, keep-alive and pipelining (answered in
order), ``Content-Length`` and chunked request bodies delivered as they
arrive with read back-pressure, ``Expect: 100-continue``, chunked streaming
responses with write back-pressure (HTTP/1.0: close-delimited), HEAD,
limits on head size and header count, and deadlines for a slow head
(``head_timeout``), a stalled body (``body_timeout``: the reader gets
``BodyTimeout``) and an idle keep-alive connection (``keepalive_timeout``).
What it refuses, with an error in OpenAI's shape and the connection closed:
a malformed request line or header (400), ``Content-Length`` together with
``Transfer-Encoding`` or a repeated, differing ``Content-Length`` (400, the
request-smuggling cases), a transfer coding other than chunked (501), a head
over the limit (431), an HTTP version other than 1.x (505).
What it does not: TLS, HTTP/2, upgrades (run Granian, ``server.engine:
granian``, or a TLS-terminating proxy in front for those).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

import orjson

from interlock.server.rsgi import BodyTimeout, ClientGone, Clock, Exchange, Scope
from interlock.wire.chunked import ChunkedDecoder, ChunkedError

#: The largest request head (request line + headers) accepted, and the most header lines.
MAX_HEAD = 64 * 1024
MAX_HEADERS = 128
#: Unread request-body bytes buffered before the socket stops being read.
_BODY_HIGH_WATER = 1024 * 1024

_STATUS_LINES: dict[int, bytes] = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TERMINATOR = b"0\r\n\r\n"

App = Callable[[Any, Any], Coroutine[Any, Any, None]]


class ProtocolError(Exception):
    """A request this server refuses before the app sees it; ``status`` is the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class H1Connection(asyncio.Protocol):
    """One client connection: parses requests in order and runs the app on each."""

    __slots__ = ("_body_left", "_buf", "_dechunk", "_drain", "_eof", "_exchange", "_reading", "_state", "_task",
                 "_transport", "closed", "http11", "loop", "paused", "server", "since")

    def __init__(self, server: H1Server) -> None:
        self.server = server
        self.loop = server.loop
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._exchange: Exchange | None = None
        self._task: asyncio.Task[None] | None = None
        #: "head" waiting for a request head, "body" reading its body, "busy" answering with the body read.
        self._state = "head"
        self._body_left = 0
        #: The chunked request body being read, if it is one.
        self._dechunk: ChunkedDecoder | None = None
        self._reading = True
        self._drain: asyncio.Future[None] | None = None
        self._eof = False
        self.closed = False
        self.paused = False
        self.http11 = True
        #: When the current wait began: idle since the last answer, a head's first byte, a body's last byte.
        self.since = self.loop.time()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        exchange = self._exchange
        if exchange is not None:
            exchange.gone()
        self._release_drain()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._release_drain()

    def _release_drain(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._state == "body":
            self.since = self.loop.time()
            self._buf += data
            self._feed_body()
        elif self._state == "head":
            if self._buf:
                self._buf += data
            else:
                self.since = self.loop.time()
                self._buf = bytearray(data)
            self._next_request()
        else:  # answering: keep pipelined bytes, up to a limit
            self._buf += data
            if len(self._buf) > MAX_HEAD + _BODY_HIGH_WATER:
                self._pause_reading()

    def eof_received(self) -> bool:
        # A half-closed client may still read the answer to a request it has sent in full; the
        # connection closes once that answer is written.
        self._eof = True
        return self._exchange is not None and self._state != "head"

    # -- parsing ---------------------------------------------------------------------------

    def _next_request(self) -> None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end > MAX_HEAD or (end < 0 and len(buf) > MAX_HEAD):
            self._refuse(ProtocolError(431, f"The request head is larger than this gateway accepts ({MAX_HEAD} bytes)."))
            return
        if end < 0:
            if buf and not buf.strip(b"\r\n"):
                buf.clear()  # stray CRLFs between requests are tolerated (RFC 9112 2.2)
            return
        head = buf[:end].decode("latin-1")
        del buf[:end + 4]
        try:
            self._start(head)
        except ProtocolError as err:
            self._refuse(err)

    def _start(self, head: str) -> None:
        lines = head.lstrip("\r\n").split("\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise ProtocolError(431, f"The request has more than {MAX_HEADERS} header lines.")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise ProtocolError(400, "Malformed request line: expected 'METHOD target HTTP/1.1'.")
        method, target, version = parts
        if version == "HTTP/1.1":
            http11 = True
        elif version == "HTTP/1.0":
            http11 = False
        elif version.startswith("HTTP/"):
            raise ProtocolError(505, f"{version} is not supported: speak HTTP/1.1 to this gateway.")
        else:
            raise ProtocolError(400, "Malformed request line: expected 'METHOD target HTTP/1.1'.")
        if not method.isalpha() or not target or "\n" in target or "\x00" in target:
            raise ProtocolError(400, "Malformed request line: expected 'METHOD target HTTP/1.1'.")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name[-1] in " \t" or name[0] in " \t" or "\n" in line or "\x00" in line:
                raise ProtocolError(400, f"Malformed header line: {line[:80]!r}.")
            name = name.lower()
            value = value.strip(" \t")
            if name in headers:
                if name == "content-length" and headers[name] != value:
                    raise ProtocolError(400, "Conflicting Content-Length headers.")
                headers[name] = f"{headers[name]}, {value}"
            else:
                headers[name] = value
        connection = headers.get("connection")
        if connection is None:
            keep_alive = http11
        else:
            tokens = connection.lower()
            keep_alive = "close" not in tokens and (http11 or "keep-alive" in tokens)
        if self.server.stopping:
            keep_alive = False
        path, _, query = target.partition("?")
        if path[:1] != "/" and "://" in path:  # absolute form (RFC 9112 3.2.2), as proxies send it
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        self.http11 = http11
        exchange = Exchange(self, keep_alive, method == "HEAD")
        coding = headers.get("transfer-encoding")
        declared = headers.get("content-length")
        if coding is not None:
            if declared is not None:
                raise ProtocolError(400, "A request may not carry both Content-Length and Transfer-Encoding.")
            if coding.lower() != "chunked":
                raise ProtocolError(501, f"Transfer-Encoding {coding!r} is not supported; use chunked.")
            self._dechunk = ChunkedDecoder()
            self._state = "body"
        elif declared is not None:
            if not declared.isdigit() or len(declared) > 18:
                raise ProtocolError(400, f"Invalid Content-Length {declared!r}.")
            self._body_left = int(declared)
            self._state = "body" if self._body_left else "busy"
        else:
            self._state = "busy"
        if self._state == "busy":
            exchange.body_done = True
        else:
            self.since = self.loop.time()
        self._exchange = exchange
        scope = Scope(self, method, path, query, "1.1" if http11 else "1.0", headers)
        if self._state == "body":
            if self._buf:
                self._feed_body()
            elif headers.get("expect", "").lower() == "100-continue" and http11:
                self.write(_CONTINUE)
        if not self.closed:  # the body's first bytes may already have been refused
            self._task = self.loop.create_task(self._serve(scope, exchange))

    def _feed_body(self) -> None:
        exchange = self._exchange
        assert exchange is not None
        buf = self._buf
        dechunk = self._dechunk
        if dechunk is None:  # Content-Length
            take = min(len(buf), self._body_left)
            if take:
                if take == len(buf):
                    exchange.feed(bytes(buf))
                    buf.clear()
                else:
                    exchange.feed(bytes(buf[:take]))
                    del buf[:take]
                self._body_left -= take
            if self._body_left == 0:
                self._state = "busy"
                exchange.end()
        else:
            data = bytes(buf)
            buf.clear()
            try:
                pieces, rest = dechunk.feed(data)
            except ChunkedError as exc:
                self._refuse(ProtocolError(400, f"Malformed chunked body: {exc}."))
                exchange.gone()  # a reader waiting for the body gets ClientGone, never a partial body
                return
            if pieces:
                exchange.feed(pieces[0] if len(pieces) == 1 else b"".join(pieces))
            if dechunk.done:
                self._dechunk = None
                self._buf = bytearray(rest)  # a pipelined request may follow
                self._state = "busy"
                exchange.end()
        if exchange.unread > _BODY_HIGH_WATER:
            self._pause_reading()

    # -- serving -------------------------------------------------------------------------

    async def _serve(self, scope: Scope, exchange: Exchange) -> None:
        self.server.active += 1
        try:
            await self.server.app(scope, exchange)
        except BaseException as err:  # the app failed: answer if nothing was sent, else cut the stream
            if not exchange.responded and not self.closed:
                exchange.keep_alive = False
                self._answer_error(500, "The gateway hit an internal error; it has been logged.")
            elif exchange.stream_open:
                exchange.keep_alive = False
                exchange.stream_open = False
            self.server.log_failure(scope, err)
            if isinstance(err, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
        else:
            if not exchange.responded and not self.closed:
                exchange.keep_alive = False
                self._answer_error(500, "The gateway returned without an answer.")
        finally:
            self.server.active -= 1
            self._finish(exchange)

    def _finish(self, exchange: Exchange) -> None:
        if exchange.stream_open:
            exchange.stream_open = False
            if self.http11:
                self.write(_TERMINATOR)
        self._exchange = None
        self._task = None
        if self.closed:
            return
        if not exchange.keep_alive or not exchange.body_done or self.server.stopping or self._eof:
            self.close()
            return
        self._state = "head"
        self.since = self.loop.time()
        if not self._reading:
            self._reading = True
            self._transport.resume_reading()  # type: ignore[union-attr]
        if self._buf:
            self._next_request()

    # -- the body's flow control --------------------------------------------------------

    def _pause_reading(self) -> None:
        if self._reading and not self.closed:
            self._reading = False
            self._transport.pause_reading()  # type: ignore[union-attr]

    def want_body(self) -> None:
        """The app took or waits for body bytes: read the socket again if back-pressure had stopped it."""
        if not self._reading and not self.closed and self._state == "body":
            self._reading = True
            self._transport.resume_reading()  # type: ignore[union-attr]

    # -- writing -----------------------------------------------------------------------

    def head(self, status: int, headers: list[tuple[str, str]], keep_alive: bool, framing: bytes) -> bytes:
        line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()
        lines = []
        for name, value in headers:
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                value = value.replace("\r", " ").replace("\n", " ")
                name = name.replace("\r", "").replace("\n", "")
            lines.append(f"{name}: {value}\r\n")
        text = "".join(lines).encode("latin-1", "replace")
        if not self.http11:
            connection = b"connection: keep-alive\r\n" if keep_alive else b"connection: close\r\n"
        else:
            connection = b"" if keep_alive else b"connection: close\r\n"
        return b"".join((line, self.server.clock.date(), text, framing, connection, b"\r\n"))

    def write(self, data: bytes) -> None:
        if not self.closed:
            self._transport.write(data)  # type: ignore[union-attr]

    async def drain(self) -> None:
        if self.paused and not self.closed:
            if self._drain is None:
                self._drain = self.loop.create_future()
            await self._drain
        if self.closed:
            raise ClientGone("the client closed the connection")

    def _answer_error(self, status: int, message: str) -> None:
        body = orjson.dumps({"error": {"message": message, "type": _error_type(status), "param": None,
                                       "code": None}})
        self.write(self.head(status, [("content-type", "application/json")], False,
                             b"content-length: %d\r\n" % len(body)) + body)

    def _refuse(self, err: ProtocolError) -> None:
        """Answer a request the server cannot parse, and close: the byte stream can't be trusted after it."""
        self._buf.clear()
        if self._exchange is None or not self._exchange.responded:
            self._answer_error(err.status, str(err))
            if self._exchange is not None:
                self._exchange.responded = True
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._transport.close()  # type: ignore[union-attr]

    # -- for the server -----------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return self._exchange is None

    def peer(self) -> object:
        return self._transport.get_extra_info("peername") if self._transport is not None else None

    def expire(self, now: float, head_timeout: float, keepalive_timeout: float, body_timeout: float) -> None:
        """Close a connection idle, or on half a request head, for too long; fail a stalled body."""
        if self.closed:
            return
        waited = now - self.since
        exchange = self._exchange
        if exchange is not None:
            if self._state == "body" and waited > body_timeout:
                self._state = "busy"  # what still arrives is not this body: the connection closes after the answer
                self._pause_reading()
                exchange.fail(BodyTimeout(f"the request body stalled: no bytes for {body_timeout:g} s"))
            return
        if self._buf and waited > head_timeout:
            self._answer_error(408, f"The request head did not arrive within {head_timeout:g} s.")
            self.close()
        elif waited > keepalive_timeout:
            self.close()


def _error_type(status: int) -> str:
    """501 and 505 answer what the client sent (a coding, a version): they are its error, not ours."""
    return "server_error" if status >= 500 and status not in (501, 505) else "invalid_request_error"


class H1Server:
    """The connections of one worker, their app, and the once-a-second housekeeping."""

    def __init__(self, app: App, loop: asyncio.AbstractEventLoop, *, head_timeout: float = 10.0,
                 keepalive_timeout: float = 75.0, body_timeout: float = 30.0,
                 on_failure: Callable[[Scope, BaseException], None] | None = None) -> None:
        self.app = app
        self.loop = loop
        self.clock = Clock()
        self.connections: set[H1Connection] = set()
        self.active = 0
        self.stopping = False
        self.head_timeout = head_timeout
        self.keepalive_timeout = keepalive_timeout
        self.body_timeout = body_timeout
        self._on_failure = on_failure
        self._sweeper: asyncio.TimerHandle | None = None

    def protocol(self) -> H1Connection:
        return H1Connection(self)

    def start(self) -> None:
        self._sweeper = self.loop.call_later(1.0, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections):
            conn.expire(now, self.head_timeout, self.keepalive_timeout, self.body_timeout)
        self._sweeper = self.loop.call_later(1.0, self._sweep)

    def log_failure(self, scope: Scope, err: BaseException) -> None:
        if self._on_failure is not None and not isinstance(err, asyncio.CancelledError):
            self._on_failure(scope, err)

    def busy(self) -> int:
        """Requests whose app call has not returned (their connection may already be gone)."""
        return self.active

    def stop_accepting(self) -> None:
        """From now on every answer closes its connection; idle connections close at once."""
        self.stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.connections):
            if conn.idle:
                conn.close()

    def abort_all(self) -> None:
        for conn in list(self.connections):
            conn.close()
