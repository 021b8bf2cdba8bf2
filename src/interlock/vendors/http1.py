"""A small, fast HTTP/1.1 client for the hot path: pooled keep-alive connections on asyncio protocols.

Why our own: a vendor call is one POST with a JSON body and a JSON or SSE
answer. General-purpose clients spend most of their per-request CPU on things
this never needs (cookies, redirects, tracing hooks, multipart, request
objects), and a client disconnect must be able to stop the vendor even before
its headers arrive. This client does only the one exchange and aborts by
closing the socket (its CPU per request: ``bench/pipeline.py --upstream``).

The answer is parsed by llhttp (``httptools.HttpResponseParser``, strict mode):
status line, header fields, ``Content-Length`` and the chunked coding. A
malformed answer (``content-length: -1`` or ``1_0``, a bad chunk size, a chunk
extension ended by a bare LF, ...) is an error for the request, never a
truncated or mis-framed body.

What it does: HTTP/1.1 over TCP or TLS, ``Content-Length``, chunked and
close-delimited bodies, gzip/deflate bodies, keep-alive pooling per origin
(LIFO, idle expiry), one transparent retry when a *reused* connection turns
out to have been closed by the server before it answered, read back-pressure,
interim 1xx answers skipped. It refuses to send a request line or header with
CR, LF or NUL in it.
What it does not: redirects, proxies, HTTP/2, upgrades, HEAD requests, transfer
codings other than chunked.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

from interlock.core.timers import running_loop

_MAX_HEADER_BYTES = 256 * 1024
_HIGH_WATER = 1024 * 1024
_LOW_WATER = 256 * 1024


class HTTPClientError(Exception):
    """A transport-level failure (connect, reset, malformed answer)."""


class ConnectTimeout(HTTPClientError):
    """The TCP/TLS connection was not established within the connect timeout."""


class ConnectionClosedEarly(HTTPClientError):
    """The server closed the connection before sending any byte of the answer."""


class ResponseHead:
    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers


class Connection(asyncio.Protocol):
    """One socket. llhttp parses one response at a time; body pieces are queued for the reader."""

    __slots__ = (
        "_close_delimited",
        "_complete",
        "_decoder",
        "_head_bytes",
        "_head_waiter",
        "_headers",
        "_parser",
        "_paused",
        "_pieces",
        "_queued",
        "_read",
        "_waiter",
        "alive",
        "done",
        "error",
        "got_bytes",
        "head",
        "idle_since",
        "keep_alive",
        "key",
        "transport",
    )

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.alive = True
        self.idle_since = time.monotonic()
        #: One parser for the connection's life: llhttp starts a new message after each complete one.
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self.head: ResponseHead | None = None
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._head_waiter: asyncio.Future[ResponseHead] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._pieces: list[bytes] = []
        self._read: list[bytes] = []  # body bytes of the read being parsed, delivered as one piece
        self._queued = 0
        self._paused = False
        self._close_delimited = False
        self._complete = False
        self._decoder: zlib._Decompress | None = None
        self.done = False
        self.error: BaseException | None = None
        self.got_bytes = False
        self.keep_alive = True

    # ----------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self._parser = None  # it holds bound methods of this object: break the cycle
        if self.head is not None and not self.done:
            if self._close_delimited and self.error is None:
                self._finish()  # a body without length or chunking ends with the connection
            else:
                self._fail(HTTPClientError("the connection closed before the answer was complete"))
        elif self.head is None and self._head_waiter is not None:
            if self.got_bytes:
                self._fail(HTTPClientError("the connection closed in the middle of the response headers"))
            else:
                self._fail(ConnectionClosedEarly("the connection closed before any answer arrived"))

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        parser = self._parser
        if self.done or self.error is not None or parser is None:
            self.keep_alive = False  # bytes after the answer: this connection is not reused
            return
        if self.head is None:
            self._head_bytes += len(data)
        try:
            parser.feed_data(data)
            if self.head is None and self._head_bytes > _MAX_HEADER_BYTES:
                raise HTTPClientError("the response headers are too large")
        except httptools.HttpParserUpgrade:
            self._abort(HTTPClientError("the vendor switched protocols (101), which this client does not speak"))
            return
        except httptools.HttpParserError as exc:
            if self._complete:
                self.keep_alive = False  # junk after a complete answer: deliver it, then drop the connection
            else:
                context = exc.__context__
                self._abort(context if isinstance(context, HTTPClientError)
                            else HTTPClientError(f"malformed answer from the vendor: {exc}"))
                return
        except HTTPClientError as exc:
            self._abort(exc)
            return
        read = self._read
        if read:
            self._read = []
            try:
                self._deliver(read[0] if len(read) == 1 else b"".join(read))
            except HTTPClientError as exc:
                self._abort(exc)
                return
        if self._complete and not self.done:
            self._finish()

    def eof_received(self) -> bool | None:
        return False

    def _abort(self, exc: HTTPClientError) -> None:
        """A malformed answer: the reader gets the error (never a truncated body) and the socket is dropped."""
        self._pieces = []
        self._fail(exc)
        if self.transport is not None:
            self.transport.abort()

    # ----------------------------------------------------------------- llhttp callbacks

    def on_message_begin(self) -> None:
        if self.head is not None:
            raise HTTPClientError("a second answer arrived for one request")
        self._headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head is not None:
            return  # a trailer field after a chunked body: read and dropped
        headers = self._headers
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").rstrip(" \t")
        old = headers.get(key)
        headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if 100 <= status < 200:
            if status == 101:
                raise HTTPClientError("the vendor switched protocols (101), which this client does not speak")
            self._headers = {}
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        headers = self._headers
        coding = headers.get("transfer-encoding")
        if coding is not None and coding.strip(" \t").lower() != "chunked":
            raise HTTPClientError(f"unsupported Transfer-Encoding {coding!r} in the vendor's answer")
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        self.keep_alive = parser.should_keep_alive()
        if coding is None and "content-length" not in headers and status not in (204, 304):
            self._close_delimited = True
            self.keep_alive = False
        self.head = ResponseHead(status, headers)
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(self.head)

    def on_body(self, data: bytes) -> None:
        self._read.append(data)

    def on_message_complete(self) -> None:
        if self.head is not None:
            self._complete = True

    def _deliver(self, data: bytes) -> None:
        if not data:
            return
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                raise HTTPClientError(f"undecodable compressed body: {exc}") from None
            if not data:
                return
        self._pieces.append(data)
        self._queued += len(data)
        if self._queued > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._pieces.append(tail)
        self.done = True
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.keep_alive = False
        if self._head_waiter is not None and not self._head_waiter.done():
            self._head_waiter.set_exception(exc)
            # The exception is delivered to the awaiting request; don't log it as unretrieved.
            self._head_waiter.exception()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ----------------------------------------------------------------- the request's side

    async def read_piece(self) -> bytes | None:
        """The next body bytes (everything queued, joined), or None at the end of the body."""
        while True:
            if self._pieces:
                pieces, self._pieces = self._pieces, []
                self._queued = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if self.error is not None:
                raise self.error
            if self.done:
                return None
            self._waiter = running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class HTTP1Client:
    """Pools of keep-alive connections per origin, shared by every request of a worker process."""

    def __init__(self, *, idle_timeout: float = 30.0, max_idle_per_origin: int = 256) -> None:
        self._idle_timeout = idle_timeout
        self._max_idle = max_idle_per_origin
        self._pools: dict[tuple[str, str, int], list[Connection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._origins: dict[str, tuple[tuple[str, str, int], str, str]] = {}

    def _origin(self, url: str) -> tuple[tuple[str, str, int], str, str]:
        """(pool key, request target, Host header) for a URL; cached, URLs repeat."""
        cached = self._origins.get(url)
        if cached is not None:
            return cached
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise HTTPClientError(f"unsupported URL {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname
        default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
        host_header = host if default else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if default else f"[{host}]:{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if any(c <= " " or c == "\x7f" for c in target):  # it would break the request line
            raise HTTPClientError(f"unsupported URL {url!r}: whitespace or a control character in its path")
        result = ((scheme, host, port), target, host_header)
        if len(self._origins) < 4096:
            self._origins[url] = result
        return result

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    def _take_idle(self, key: tuple[str, str, int]) -> Connection | None:
        pool = self._pools.get(key)
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if conn.alive and now - conn.idle_since < self._idle_timeout:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        return None

    async def _connect(self, key: tuple[str, str, int], connect_timeout: float) -> Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(key), host, port,
                    ssl=self._ssl_context() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {host}:{port} within {connect_timeout:g}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise HTTPClientError(f"{type(exc).__name__}: {exc.strerror or exc}" if isinstance(exc, OSError)
                                  else str(exc)) from None
        return conn

    def release(self, conn: Connection) -> None:
        """Return a connection whose response was read to its end, or close it."""
        if conn.alive and conn.keep_alive and conn.done and conn.error is None and conn.transport is not None:
            conn._reset()
            conn.idle_since = time.monotonic()
            pool = self._pools.setdefault(conn.key, [])
            if len(pool) < self._max_idle:
                pool.append(conn)
                return
        self.abort(conn)

    @staticmethod
    def abort(conn: Connection) -> None:
        conn.alive = False
        if conn.transport is not None:
            conn.transport.abort()

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        connect_timeout: float,
    ) -> tuple[Connection, ResponseHead]:
        """Send the request; return the connection and the response head once it arrived."""
        key, target, host_header = self._origin(url)
        lines = [f"{method} {target} HTTP/1.1\r\nhost: {host_header}\r\ncontent-length: {len(body)}\r\n"]
        for name, value in headers.items():
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        request_head = "".join(lines)
        # Config headers are checked when the config loads; this catches any other CR, LF or NUL (three C scans).
        expected = len(headers) + 4
        if (request_head.count("\n") != expected or request_head.count("\r") != expected
                or "\x00" in request_head):
            raise HTTPClientError("refusing to send a request whose target or header carries CR, LF or NUL")
        payload = request_head.encode("latin-1") + body
        for attempt in (0, 1):
            conn = self._take_idle(key) if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, connect_timeout)
            waiter = conn._head_waiter = running_loop().create_future()
            assert conn.transport is not None
            conn.transport.write(payload)
            try:
                head = await waiter
            except ConnectionClosedEarly:
                self.abort(conn)
                if reused:
                    continue  # the server had closed the idle connection: try a fresh one once
                raise
            except BaseException:
                # Cancelled (the client left) or failed: the socket is useless mid-exchange.
                self.abort(conn)
                raise
            return conn, head
        raise HTTPClientError("unreachable")  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        for pool in self._pools.values():
            for conn in pool:
                if conn.transport is not None:
                    conn.transport.close()
        self._pools.clear()
