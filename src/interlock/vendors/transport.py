"""The upstream transport: how bytes reach a vendor and come back.

One small interface, two implementations: :class:`HttpTransport` (pooled
keep-alive connections of our own HTTP/1.1 client, see ``http1.py``) and the in-process
simulator transport. Vendor adapters only build requests and decode answers;
they never know which transport carries them, so the simulator exercises the
very same decoding code as a real vendor.

Timeouts are enforced here, in one place:

* ``connect`` - establishing the TCP/TLS connection;
* ``first_byte`` - from sending the request until the first body bytes arrive
  (headers plus the first chunk; reasoning models may think for a while);
* ``idle`` - the longest gap between two body reads once bytes flow;
* ``total`` - the whole exchange, body included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from interlock.core.errors import UpstreamError, UpstreamTimeout
from interlock.core.timers import Expiry, running_loop
from interlock.core.vendor import Timeouts
from interlock.vendors.http1 import Connection, ConnectTimeout, HTTP1Client, HTTPClientError, ResponseHead


class UpstreamResponse(Protocol):
    """An answer whose headers have arrived; the body is read once, in one of two ways."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        """The whole body (subject to the idle and total timeouts)."""
        ...

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive, in arbitrary slices."""
        ...

    def close(self) -> None:
        """Release the connection (aborting it if the body was not fully read)."""
        ...


class Transport(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """Send a request; return once the status line and headers are in.

        Raises :class:`UpstreamTimeout` or :class:`UpstreamError` for transport
        failures (refused, reset, DNS, TLS). HTTP error statuses are returned,
        not raised: the adapter decides what they mean.
        """
        ...

    async def close(self) -> None: ...


class _Deadline:
    """One deadline per exchange that moves: first byte, then idle gaps, capped by total."""

    __slots__ = ("_loop", "_timeouts", "_total_at", "expiry", "phase")

    def __init__(self, timeouts: Timeouts) -> None:
        self._loop = running_loop()
        self._timeouts = timeouts
        now = self._loop.time()
        self._total_at = now + timeouts.total
        self.phase = "first_byte"
        self.expiry = Expiry(self._loop, min(now + timeouts.first_byte, self._total_at))

    def bytes_arrived(self) -> None:
        self.phase = "idle"
        self.expiry.reschedule(min(self._loop.time() + self._timeouts.idle, self._total_at))

    def error(self) -> UpstreamTimeout:
        if self._loop.time() >= self._total_at - 1e-3:
            return UpstreamTimeout(f"the vendor did not finish within the total timeout of {self._timeouts.total:g}s")
        if self.phase == "first_byte":
            return UpstreamTimeout(f"the vendor sent no data within the first-byte timeout of {self._timeouts.first_byte:g}s")
        return UpstreamTimeout(f"the vendor stream stalled for longer than the idle timeout of {self._timeouts.idle:g}s")


class _HttpResponse:
    __slots__ = ("_client", "_conn", "_deadline", "_open", "headers", "status")

    def __init__(self, client: HTTP1Client, conn: Connection, head: ResponseHead, deadline: _Deadline) -> None:
        self._client = client
        self._conn = conn
        self._deadline = deadline
        self._open = True
        self.status = head.status
        self.headers: Mapping[str, str] = head.headers

    async def read(self) -> bytes:
        deadline = self._deadline
        conn = self._conn
        pieces: list[bytes] = []
        try:
            with deadline.expiry:
                while (piece := await conn.read_piece()) is not None:
                    pieces.append(piece)
        except BaseException as exc:
            error = self._failed(exc, "the vendor connection failed while reading the answer")
            if error is exc:
                raise
            raise error from None
        self._release()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return _BodyPieces(self)

    def _failed(self, exc: BaseException, what: str) -> BaseException:
        """Abort the exchange that ``exc`` interrupted; the error to raise for it: the deadline's, ``what``
        for a broken connection, else ``exc`` itself."""
        self.close()
        if isinstance(exc, TimeoutError):
            return self._deadline.error()
        if isinstance(exc, HTTPClientError):
            return UpstreamError(f"{what}: {exc}")
        return exc

    def _release(self) -> None:
        if self._open:
            self._open = False
            self._client.release(self._conn)

    def close(self) -> None:
        """Abort the exchange unless the body was read to its end (the vendor stops generating)."""
        if self._open:
            self._open = False
            if self._conn.done and self._conn.error is None:
                self._client.release(self._conn)
            else:
                self._client.abort(self._conn)


class _BodyPieces:
    """``async for piece in resp.iter_bytes()``: the body as it arrives. A class, not an async generator
    (mypyc compiles none: make fast); the deadline runs while a piece is awaited, not while the caller
    handles one, so a slow client is never taken for a stalled vendor."""

    __slots__ = ("_done", "_resp")

    def __init__(self, resp: _HttpResponse) -> None:
        self._resp = resp
        self._done = False

    def __aiter__(self) -> _BodyPieces:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        resp = self._resp
        deadline = resp._deadline
        try:
            with deadline.expiry:
                piece = await resp._conn.read_piece()
        except BaseException as exc:
            self._done = True
            error = resp._failed(exc, "the vendor connection broke mid-stream")
            if error is exc:
                raise
            raise error from None
        if piece is None:
            self._done = True
            resp.close()  # read to its end: the connection goes back to the pool
            raise StopAsyncIteration
        deadline.bytes_arrived()
        return piece


class HttpTransport:
    """Pooled keep-alive HTTP/1.1 connections to every vendor, one pool per worker process."""

    def __init__(self) -> None:
        self._client = HTTP1Client()

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        deadline = _Deadline(timeouts)
        try:
            with deadline.expiry:
                conn, head = await self._client.send(method, url, headers, body, timeouts.connect)
        except TimeoutError:
            raise deadline.error() from None
        except ConnectTimeout:
            raise UpstreamTimeout(f"could not connect to the vendor within {timeouts.connect:g}s") from None
        except HTTPClientError as exc:
            raise UpstreamError(f"could not reach the vendor: {exc}") from None
        # The same expiry is re-entered for the body, so that one deadline spans the exchange.
        return _HttpResponse(self._client, conn, head, deadline)

    async def close(self) -> None:
        self._client.close()
