"""``bench/mock_upstream.py --relay-to``: a zero-work TCP relay (no parsing), for reference figures."""

from __future__ import annotations

import asyncio
from typing import cast


class RelayClient(asyncio.Protocol):
    """``--relay-to``: a zero-work TCP relay, the floor of what any proxy in between can add.

    Bytes from the client go to a fresh upstream connection as they arrive and
    back the same way; nothing is parsed. Used by the harness as a "perfect
    proxy" placed where the gateway runs, to separate the cost of the extra
    network hop (and of crossing CPU cores) from the gateway's own work.
    """

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._client: asyncio.Transport | None = None
        self._upstream: asyncio.Transport | None = None
        self._early: list[bytes] = []
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._client = cast(asyncio.Transport, transport)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(lambda: RelayUpstream(self), *self._target)
        except OSError:
            self._close()
            return
        if self._closed:
            transport.close()
            return
        self._upstream = transport
        if self._early:
            self._upstream.write(b"".join(self._early))
            self._early.clear()

    def data_received(self, data: bytes) -> None:
        if self._upstream is not None:
            self._upstream.write(data)
        else:
            self._early.append(data)

    def pause_writing(self) -> None:  # the client is slow: stop reading from upstream
        if self._upstream is not None:
            self._upstream.pause_reading()

    def resume_writing(self) -> None:
        if self._upstream is not None:
            self._upstream.resume_reading()

    def eof_received(self) -> bool:
        self._close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._close()

    def from_upstream(self, data: bytes) -> None:
        if self._client is not None and not self._closed:
            self._client.write(data)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._client is not None:
            self._client.close()
        if self._upstream is not None:
            self._upstream.close()


class RelayUpstream(asyncio.Protocol):
    def __init__(self, client: RelayClient) -> None:
        self._client = client
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._client.from_upstream(data)

    def pause_writing(self) -> None:  # upstream is slow: stop reading from the client
        if self._client._client is not None:
            self._client._client.pause_reading()

    def resume_writing(self) -> None:
        if self._client._client is not None:
            self._client._client.resume_reading()

    def eof_received(self) -> bool:
        self._client._close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._close()
