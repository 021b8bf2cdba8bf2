"""interlock's own HTTP/1.1 server: one asyncio protocol per connection, llhttp parsing, RSGI objects for the app.

Why our own connection handling: Granian runs its HTTP stack on Rust threads
and hands every request to the Python event loop across threads. On a worker
pinned to one core those threads compete with the loop, and the hand-offs cost
more per request than parsing a request head. Here everything happens on the
worker's one event loop: bytes arrive in ``data_received``, llhttp (the
``httptools`` binding, as uvicorn uses it) parses them, and the handler task
starts in the same loop turn.

The parsing is llhttp's, in its strict mode: the request line, header names
and values, ``Content-Length`` and the chunked coding (sizes, extensions,
trailers, CRLFs) are never parsed here. What this module adds is policy on
what llhttp accepted: HTTP/1.0 and 1.1 only, a transfer coding other than
chunked refused, the size and count limits, ``max_body_bytes``.

The app sees the same interface as under Granian (the subset of RSGI that
``server/http.py`` declares; the objects are in ``rsgi.py``): a scope with
``method``, ``path`` (raw, not percent-decoded), ``query_string`` and
``headers`` (lower-case names, repeated headers joined with ", "), and a
protocol object that reads the body, answers, and reports a client going away
through ``client_disconnect()``.

What it does: keep-alive and pipelining (parsed ahead, answered in order),
request bodies delivered as they arrive with read back-pressure, ``Expect:
100-continue`` (answered when the app first waits for the body), chunked
streaming responses with write back-pressure (HTTP/1.0: close-delimited),
HEAD, and deadlines for a slow head (``head_timeout``: 408), a stalled body
(``body_timeout``: the reader gets ``BodyTimeout``) and an idle keep-alive
connection (``keepalive_timeout``).
What it refuses, with a JSON error (in the format of the API at the request's
path once its head is parsed, through the app's ``render_refusal``, else
OpenAI's), the connection closed and ``interlock_http_refusals_total{status,reason}``
counted: anything llhttp
rejects (400: malformed request line, header name or value, obs-fold, bare CR
or LF, ``Content-Length`` with ``Transfer-Encoding``, duplicate
``Content-Length``, a bad chunk size or extension), a transfer coding other
than chunked (501), a declared ``Content-Length`` or body over
``max_body_bytes`` (413), a head over the limits (431), an HTTP version other
than 1.x (505).
What it does not: TLS, HTTP/2, upgrades (an ``Upgrade`` request is answered
as plain HTTP/1.1 and the connection closed; run Granian or a TLS-terminating
proxy in front for those).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

import httptools
import orjson

from interlock.server.refusals import (
    MAX_HEAD,
    MAX_HEADERS,
    BodyTimeout,
    ClientGone,
    ProtocolError,
    body_too_large,
    head_too_large,
    refusal,
)
from interlock.server.rsgi import Clock, Exchange, Scope

#: The default of ``server.max_body_bytes``.
DEFAULT_MAX_BODY = 32 * 1024 * 1024
#: Unread request-body bytes buffered before the socket stops being read.
_BODY_HIGH_WATER = 1024 * 1024
#: Parsed pipelined requests waiting behind the one being answered before the socket stops being read.
_MAX_QUEUED = 16

_STATUS_LINES: dict[int, bytes] = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_TERMINATOR = b"0\r\n\r\n"

App = Callable[[Any, Any], Coroutine[Any, Any, None]]
RefusalHook = Callable[[int, str], None]
#: (path, status, code, message) → the error body in the format of the API at that path.
RefusalRenderer = Callable[[str, int, str, str], bytes]


class H1Connection(asyncio.Protocol):
    """One client connection: llhttp parses requests as bytes arrive; the app answers them in order."""

    __slots__ = ("_drain", "_eof", "_head_bytes", "_head_open", "_head_size", "_headers", "_last", "_parsing", "_path", "_queue",
                 "_reading", "_ready", "_refusal", "_serving", "_stop", "_task", "_transport", "_url", "closed",
                 "loop", "parser", "paused", "received", "server", "since")

    def __init__(self, server: H1Server) -> None:
        self.server = server
        self.loop = server.loop
        self._transport: asyncio.Transport | None = None
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        #: The request head being parsed: target, headers, and its size as counted so far.
        self._url = b""
        self._path: str | None = None
        self._headers: dict[str, str] = {}
        self._head_size = 0
        #: Bytes arrived while a head was incomplete (bounds what llhttp buffers of a partial header).
        self._head_open = False
        self._head_bytes = 0
        #: The request whose body llhttp is reading, and the bytes of that body so far.
        self._parsing: Exchange | None = None
        self.received = 0
        #: The request parsed last (its head complete).
        self._last: Exchange | None = None
        #: The request the app is answering; a request parsed in this read, to start once the read is parsed;
        #: pipelined requests waiting their turn; a refusal to answer when its turn comes.
        self._serving: Exchange | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: tuple[Scope, Exchange] | None = None
        self._queue: deque[tuple[Scope, Exchange]] = deque()
        self._refusal: ProtocolError | None = None
        #: Nothing more is parsed: after a refusal, an upgrade, or a request that closes the connection.
        self._stop = False
        self._reading = True
        self._drain: asyncio.Future[None] | None = None
        self._eof = False
        self.closed = False
        self.paused = False
        #: When the current wait began: idle since the last answer, a head's first byte, a body's last byte.
        self.since = self.loop.time()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.parser = None  # the parser holds bound methods of this object: break the cycle
        self.server.connections.discard(self)
        for exchange in (self._serving, self._parsing):
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
        parser = self.parser
        if self._stop or parser is None:
            return
        if self._parsing is not None:
            self.since = self.loop.time()
        elif self._head_open:
            self._head_bytes += len(data)
        else:
            self._head_open = True
            self._head_bytes = 0
            if self._serving is None:
                self.since = self.loop.time()
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stop = True  # the rest is another protocol: the upgrade request is answered, then the close
            self._pause_reading()
        except httptools.HttpParserError as exc:
            if not self._stop:  # bytes after a request that closes the connection are not a request
                context = exc.__context__
                if isinstance(context, ProtocolError):
                    self._refuse(context)
                elif isinstance(exc, httptools.HttpParserCallbackError) and context is not None:
                    raise context from None  # a bug of ours in a callback, not the client's fault
                else:
                    self._refuse(refusal(exc))
        else:
            if self._head_open and self._head_bytes > MAX_HEAD and not self._stop:
                self._refuse(head_too_large())
        ready = self._ready
        if ready is not None:
            self._ready = None
            if not self.closed:
                self._begin(*ready)

    def eof_received(self) -> bool:
        # A half-closed client may still read the answers to requests it has sent in full; the connection
        # closes once they are written. A body it had not finished will not arrive: its reader is told.
        self._eof = True
        parsing = self._parsing
        if parsing is not None:
            self._parsing = None
            parsing.fail(ClientGone("the client closed its side before sending the whole request body"))
        return self._serving is not None

    # -- llhttp callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._head_open = True
        self._head_bytes = 0
        self._head_size = 0
        self._url = b""
        self._path = None
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD:
            raise head_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._parsing is not None:
            return  # a trailer field after a chunked body: read and dropped
        headers = self._headers
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD:
            raise head_too_large()
        if len(headers) >= MAX_HEADERS:
            raise ProtocolError(431, "too_many_headers", f"The request has more than {MAX_HEADERS} header fields.")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").rstrip(" \t")  # llhttp drops the leading whitespace, not the trailing
        old = headers.get(key)
        headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        parser = self.parser
        assert parser is not None
        self._head_open = False
        if self._stop:
            return
        server = self.server
        target = self._url.decode("latin-1")
        path, _, query = target.partition("?")
        if path[:1] != "/" and "://" in path:  # absolute form (RFC 9112 3.2.2), as proxies send it
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        self._path = path
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise ProtocolError(505, "unsupported_http_version",
                                f"HTTP/{version} is not supported: speak HTTP/1.1 to this gateway.")
        http11 = version == "1.1"
        headers = self._headers
        coding = headers.get("transfer-encoding")
        has_body = coding is not None
        if coding is not None:
            if not http11:
                raise ProtocolError(400, "invalid_transfer_encoding",
                                    "Transfer-Encoding is not allowed in an HTTP/1.0 request.")
            codings = [c.strip(" \t").lower() for c in coding.split(",")]
            if codings[-1] != "chunked" or codings.count("chunked") > 1:  # RFC 9112 6.3: the length is unknown
                raise ProtocolError(400, "invalid_transfer_encoding",
                                    f"Invalid Transfer-Encoding {coding!r}: a request body's last coding must be "
                                    "chunked, applied once.")
            if len(codings) > 1:
                raise ProtocolError(501, "unsupported_transfer_coding",
                                    f"Transfer-Encoding {coding!r} is not supported; use chunked alone.")
        declared = headers.get("content-length")
        if declared is not None:  # llhttp checked it is decimal digits, one header
            size = int(declared)
            if size > server.max_body_bytes:
                raise body_too_large(server.max_body_bytes)
            has_body = size > 0
        method = parser.get_method().decode("ascii")
        keep_alive = parser.should_keep_alive() and not server.stopping and not parser.should_upgrade()
        exchange = self._last = Exchange(self, keep_alive, method == "HEAD", http11)
        scope = Scope(self, method, path, query, version, headers)
        if has_body:
            self._parsing = exchange
            self.received = 0
            self.since = self.loop.time()
            exchange.expect_continue = http11 and headers.get("expect", "").lower() == "100-continue"
        else:
            exchange.body_done = True
        if self._serving is None and self._ready is None and not self._queue:
            self._ready = (scope, exchange)  # started once this read is parsed, in the same loop turn
        else:
            self._queue.append((scope, exchange))
            if len(self._queue) >= _MAX_QUEUED:
                self._pause_reading()

    def on_body(self, data: bytes) -> None:
        exchange = self._parsing
        if exchange is None or self._stop:
            return
        self.received += len(data)
        if self.received > self.server.max_body_bytes:
            raise body_too_large(self.server.max_body_bytes)
        exchange.feed(data)
        if exchange.unread > _BODY_HIGH_WATER:
            self._pause_reading()

    def on_message_complete(self) -> None:
        self._head_open = False
        exchange = self._parsing
        if exchange is not None:
            self._parsing = None
            exchange.end()
        exchange = self._last
        if exchange is not None and not exchange.keep_alive:
            self._stop = True  # the connection closes after this answer: what follows is not read

    # -- serving -------------------------------------------------------------------------

    def _begin(self, scope: Scope, exchange: Exchange) -> None:
        self._serving = exchange
        self.since = self.loop.time()
        self._task = self.loop.create_task(self._serve(scope, exchange))

    async def _serve(self, scope: Scope, exchange: Exchange) -> None:
        self.server.active += 1
        try:
            await self.server.app(scope, exchange)
        except (BodyTimeout, ClientGone) as err:
            # The body the app was reading did not arrive (an app that does not answer this itself):
            # the client's fault, answered as the gateway's own app does, not a 500.
            if not exchange.responded and not self.closed:
                exchange.keep_alive = False
                status, code = (408, "request_timeout") if isinstance(err, BodyTimeout) else (400, "incomplete_body")
                self._answer_error(status, code, f"The request body did not arrive: {err}.", exchange.http11,
                                   scope.path)
            elif exchange.stream_open:
                exchange.keep_alive = False
                exchange.stream_open = False
        except BaseException as err:  # the app failed: answer if nothing was sent, else cut the stream
            if not exchange.responded and not self.closed:
                exchange.keep_alive = False
                self._answer_error(500, "server_error", "The gateway hit an internal error; it has been logged.",
                                   exchange.http11)
            elif exchange.stream_open:
                exchange.keep_alive = False
                exchange.stream_open = False
            self.server.log_failure(scope, err)
            if isinstance(err, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
        else:
            if not exchange.responded and not self.closed:
                exchange.keep_alive = False
                self._answer_error(500, "server_error", "The gateway returned without an answer.", exchange.http11)
        finally:
            self.server.active -= 1
            self._finish(exchange)

    def _finish(self, exchange: Exchange) -> None:
        if exchange.stream_open:
            exchange.stream_open = False
            if exchange.http11:
                self.write(_TERMINATOR)
        self._serving = None
        self._task = None
        if self.closed:
            return
        if not exchange.keep_alive or not exchange.body_done or self.server.stopping:
            self.close()
            return
        if self._queue:
            self._begin(*self._queue.popleft())
            self._maybe_resume()
            return
        refused = self._refusal
        if refused is not None:
            self._answer_refusal(refused)
            self.close()
            return
        if self._eof or self._stop:
            self.close()
            return
        self.since = self.loop.time()
        self._maybe_resume()

    # -- the body's flow control --------------------------------------------------------

    def _pause_reading(self) -> None:
        if self._reading and not self.closed:
            self._reading = False
            self._transport.pause_reading()  # type: ignore[union-attr]

    def _maybe_resume(self) -> None:
        if self._reading or self.closed or self._stop or len(self._queue) >= _MAX_QUEUED:
            return
        parsing = self._parsing
        if parsing is None or parsing.unread <= _BODY_HIGH_WATER:
            self._reading = True
            self._transport.resume_reading()  # type: ignore[union-attr]

    def want_body(self) -> None:
        """The app took or waits for body bytes: read the socket again if back-pressure had stopped it."""
        if not self._reading:
            self._maybe_resume()

    # -- writing -----------------------------------------------------------------------

    def head(self, status: int, headers: list[tuple[str, str]], keep_alive: bool, framing: bytes,
             http11: bool = True) -> bytes:
        line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()
        lines = []
        for name, value in headers:
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                value = value.replace("\r", " ").replace("\n", " ")
                name = name.replace("\r", "").replace("\n", "")
            lines.append(f"{name}: {value}\r\n")
        text = "".join(lines).encode("latin-1", "replace")
        if not http11:
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

    def _answer_error(self, status: int, code: str, message: str, http11: bool = True,
                      path: str | None = None) -> None:
        render = self.server.render_refusal
        if path is not None and render is not None:
            body = render(path, status, code, message)
        else:  # OpenAI's shape: no path known (a broken head), or no renderer given
            error_type = "server_error" if status >= 500 and status not in (501, 505) else "invalid_request_error"
            body = orjson.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}})
        self.write(self.head(status, [("content-type", "application/json")], False,
                             b"content-length: %d\r\n" % len(body), http11) + body)

    def _answer_refusal(self, err: ProtocolError) -> None:
        self.server.refused(err.status, err.reason)
        self._answer_error(err.status, err.reason, str(err), path=err.path)

    def _refuse(self, err: ProtocolError) -> None:
        """Refuse what llhttp or the limits rejected, and close: the byte stream can't be trusted after it.

        Requests parsed before it are answered first, in order; a request whose body broke gets the refusal
        (its reader, if the app runs, never sees a partial body)."""
        self._stop = True
        self._pause_reading()
        if err.path is None:
            err.path = self._path  # the refused request's, once its head was parsed
        parsing, self._parsing = self._parsing, None
        ready, self._ready = self._ready, None
        if ready is not None and ready[1] is not parsing and not self.closed:
            self._begin(*ready)  # a complete request parsed before the bad bytes is answered first
        serving = self._serving
        if serving is not None and serving is not parsing:
            if self._queue and self._queue[-1][1] is parsing:
                self._queue.pop()
            self._refusal = err  # answered by _finish once the requests ahead of it are
            return
        self._queue.clear()
        if serving is None or not serving.responded:
            self._answer_refusal(err)
            if serving is not None:
                serving.responded = True
        else:
            self.server.refused(err.status, err.reason)
        self.close()
        if parsing is not None:
            parsing.gone()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._transport.close()  # type: ignore[union-attr]

    # -- for the server -----------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return self._serving is None

    def peer(self) -> object:
        return self._transport.get_extra_info("peername") if self._transport is not None else None

    def expire(self, now: float, head_timeout: float, keepalive_timeout: float, body_timeout: float) -> None:
        """Close a connection idle, or on half a request head, for too long; fail a stalled body."""
        if self.closed:
            return
        waited = now - self.since
        serving = self._serving
        if serving is not None:
            if serving is self._parsing and waited > body_timeout:
                self._parsing = None
                self._stop = True  # what still arrives is not this body: the connection closes after the answer
                self._pause_reading()
                serving.fail(BodyTimeout(f"the request body stalled: no bytes for {body_timeout:g} s"))
            return
        if self._head_open and waited > head_timeout:
            self._stop = True
            self._answer_refusal(ProtocolError(408, "head_timeout",
                                               f"The request head did not arrive within {head_timeout:g} s."))
            self.close()
        elif waited > keepalive_timeout:
            self.close()


class H1Server:
    """The connections of one worker, their app, and the once-a-second housekeeping."""

    def __init__(self, app: App, loop: asyncio.AbstractEventLoop, *, head_timeout: float = 10.0,
                 keepalive_timeout: float = 75.0, body_timeout: float = 30.0,
                 max_body_bytes: int = DEFAULT_MAX_BODY,
                 on_failure: Callable[[Scope, BaseException], None] | None = None,
                 on_refusal: RefusalHook | None = None, render_refusal: RefusalRenderer | None = None) -> None:
        self.app = app
        self.loop = loop
        self.clock = Clock()
        self.connections: set[H1Connection] = set()
        self.active = 0
        self.stopping = False
        self.head_timeout = head_timeout
        self.keepalive_timeout = keepalive_timeout
        self.body_timeout = body_timeout
        self.max_body_bytes = max_body_bytes
        self._on_failure = on_failure
        self._on_refusal = on_refusal
        self.render_refusal = render_refusal
        self._sweeper: asyncio.TimerHandle | None = None

    def protocol(self) -> H1Connection:
        return H1Connection(self)

    def start(self) -> None:
        self._sweeper = self.loop.call_later(1.0, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections):
            conn.expire(now, self.head_timeout, self.keepalive_timeout, self.body_timeout)
        self._sweeper = self.loop.call_later(self._sweep_interval(), self._sweep)

    def _sweep_interval(self) -> float:
        """Once a second, or often enough for a head timeout below a second (tests configure one)."""
        return min(1.0, max(0.05, self.head_timeout / 4))

    def log_failure(self, scope: Scope, err: BaseException) -> None:
        if self._on_failure is not None and not isinstance(err, asyncio.CancelledError):
            self._on_failure(scope, err)

    def refused(self, status: int, reason: str) -> None:
        if self._on_refusal is not None:
            self._on_refusal(status, reason)

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
