"""The upstream transport: how bytes reach a vendor and come back.

One small interface, two implementations: :class:`HttpTransport` (pooled
aiohttp connections, one session per worker process) and the in-process
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

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from interlock.errors import UpstreamError, UpstreamTimeout


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 60.0
    total: float = 600.0


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
    """One timer per exchange whose deadline moves: first byte, then idle gaps, capped by total."""

    __slots__ = ("_cm", "_loop", "_timeouts", "_total_at", "phase")

    def __init__(self, timeouts: Timeouts) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeouts = timeouts
        now = self._loop.time()
        self._total_at = now + timeouts.total
        self.phase = "first_byte"
        self._cm = asyncio.timeout_at(min(now + timeouts.first_byte, self._total_at))

    def bytes_arrived(self) -> None:
        self.phase = "idle"
        self._cm.reschedule(min(self._loop.time() + self._timeouts.idle, self._total_at))

    def error(self, url: str) -> UpstreamTimeout:
        if self._loop.time() >= self._total_at - 1e-3:
            return UpstreamTimeout(f"the vendor did not finish within the total timeout of {self._timeouts.total:g}s")
        if self.phase == "first_byte":
            return UpstreamTimeout(f"the vendor sent no data within the first-byte timeout of {self._timeouts.first_byte:g}s")
        return UpstreamTimeout(f"the vendor stream stalled for longer than the idle timeout of {self._timeouts.idle:g}s")


class _HttpResponse:
    __slots__ = ("_deadline", "_resp", "_url", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse, deadline: _Deadline, url: str) -> None:
        self._resp = resp
        self._deadline = deadline
        self._url = url
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read(self) -> bytes:
        try:
            async with self._deadline._cm:
                return await self._resp.read()
        except TimeoutError:
            raise self._deadline.error(self._url) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the vendor connection failed while reading the answer: {exc!s}") from None
        finally:
            self._resp.release()

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        deadline = self._deadline
        content = self._resp.content
        try:
            async with deadline._cm:
                while True:
                    data = await content.readany()
                    if not data:
                        return
                    deadline.bytes_arrived()
                    yield data
        except TimeoutError:
            raise deadline.error(self._url) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the vendor connection broke mid-stream: {exc!s}") from None
        finally:
            self._resp.close()

    def close(self) -> None:
        self._resp.close()


class HttpTransport:
    """Pooled HTTP/1.1 keep-alive connections to every vendor, one pool per process."""

    def __init__(self, *, limit_per_host: int = 0, keepalive_timeout: float = 60.0) -> None:
        self._limit_per_host = limit_per_host
        self._keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._connect_timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running loop of its worker.
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self._limit_per_host,
            keepalive_timeout=self._keepalive_timeout,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    def _client_timeout(self, connect: float) -> aiohttp.ClientTimeout:
        timeout = self._connect_timeouts.get(connect)
        if timeout is None:
            timeout = self._connect_timeouts[connect] = aiohttp.ClientTimeout(total=None, sock_connect=connect)
        return timeout

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
            async with deadline._cm:
                session = self._session or self._open()
                resp = await session.request(
                    method, url, headers=headers, data=body, timeout=self._client_timeout(timeouts.connect)
                )
        except TimeoutError:
            raise deadline.error(url) from None
        except aiohttp.ServerTimeoutError:
            raise UpstreamTimeout(f"could not connect to the vendor within {timeouts.connect:g}s") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"could not reach the vendor: {exc!s}") from None
        # The timer is re-entered for the body so that one deadline spans the exchange.
        deadline._cm = asyncio.timeout_at(deadline._cm.when())
        return _HttpResponse(resp, deadline, url)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
