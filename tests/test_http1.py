"""The hot-path HTTP/1.1 client against raw socket servers: framing, pooling, failures."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from interlock.core.errors import UpstreamError, UpstreamTimeout
from interlock.core.vendor import Timeouts
from interlock.vendors.http1 import HTTP1Client, HTTPClientError
from interlock.vendors.transport import HttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head, body


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions?x=1"


def responder(*answers: bytes, keep_open: bool = True) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
        if keep_open:
            await reader.read()

    return handle


async def fetch(client: HTTP1Client, url: str, body: bytes = b"{}") -> tuple[int, dict[str, str], bytes]:
    conn, head = await client.send("POST", url, {"content-type": "application/json"}, body, 5)
    pieces = []
    while (piece := await conn.read_piece()) is not None:
        pieces.append(piece)
    client.release(conn)
    return head.status, head.headers, b"".join(pieces)


_SECOND = b'\ndata: {"x": "\xe2\x82\xac"}\n\n'
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
           b"7\r\ndata: a\r\n" + b"%x;ext=1\r\n" % len(_SECOND) + _SECOND + b"\r\n0\r\nX-Trailer: t\r\n\r\n")


async def test_request_line_headers_and_body_reach_the_server() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    async with Server(handle) as server:
        client = HTTP1Client()
        status, headers, body = await fetch(client, server.url, b'{"a": 1}')
        assert (status, body, headers["content-length"]) == (200, b"ok", "2")
    head, sent = seen[0]
    assert head.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert b"\r\ncontent-type: application/json\r\n" in head
    assert b"\r\ncontent-length: 8\r\n" in head
    assert sent == b'{"a": 1}'


@pytest.mark.parametrize("split", range(0, len(CHUNKED), 3))
async def test_chunked_body_split_anywhere(split: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED[:split])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(CHUNKED[split:])
        await writer.drain()
        await reader.read()

    async with Server(handle) as server:
        status, _, body = await fetch(HTTP1Client(), server.url)
    assert status == 200
    assert body == b'data: a\ndata: {"x": "\xe2\x82\xac"}\n\n'


async def test_keep_alive_reuses_one_connection() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"
    async with Server(responder(ok, CHUNKED, ok)) as server:
        client = HTTP1Client()
        for _ in range(3):
            await fetch(client, server.url)
        assert server.connections == 1


async def test_connection_close_and_close_delimited_bodies() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()

    async with Server(handle) as server:
        client = HTTP1Client()
        assert (await fetch(client, server.url))[2] == b"until the end"
        assert (await fetch(client, server.url))[2] == b"until the end"
        assert server.connections == 2


async def test_gzip_body_is_decoded() -> None:
    payload = gzip.compress(b'{"ok": true}' * 100)
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
    async with Server(responder(answer)) as server:
        assert (await fetch(HTTP1Client(), server.url))[2] == b'{"ok": true}' * 100


async def test_a_stale_pooled_connection_is_retried_once_on_a_fresh_one() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok)
        await writer.drain()
        # Then the server drops the idle connection (as servers do after their keep-alive timeout).

    async with Server(handle) as server:
        client = HTTP1Client()
        await fetch(client, server.url)
        await asyncio.sleep(0.05)
        assert (await fetch(client, server.url))[2] == b"ok"
        assert server.connections == 2


async def test_truncated_bodies_are_errors() -> None:
    for answer in (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"):
        async with Server(responder(answer, keep_open=False)) as server:
            client = HTTP1Client()
            conn, _ = await client.send("POST", server.url, {}, b"", 5)
            with pytest.raises(HTTPClientError, match="closed before the answer was complete"):
                while await conn.read_piece() is not None:
                    pass


async def test_garbage_is_an_error_not_a_hang() -> None:
    async with Server(responder(b"SSH-2.0-OpenSSH\r\n\r\n")) as server:
        with pytest.raises(HTTPClientError, match=r"malformed answer from the vendor: Expected HTTP/"):
            await HTTP1Client().send("POST", server.url, {}, b"", 5)


async def test_back_pressure_pauses_and_resumes_reading() -> None:
    big = b"x" * (3 * 1024 * 1024)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    async with Server(responder(answer)) as server:
        client = HTTP1Client()
        conn, _ = await client.send("POST", server.url, {}, b"", 5)
        await asyncio.sleep(0.2)  # let the server fill the buffers while nobody reads
        assert conn._paused
        total = 0
        while (piece := await conn.read_piece()) is not None:
            total += len(piece)
        assert total == len(big)


async def test_transport_timeouts_and_refused_connections() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    transport = HttpTransport()
    async with Server(silent) as server:
        with pytest.raises(UpstreamTimeout, match=r"first-byte timeout of 0\.2s"):
            await transport.request("POST", server.url, {}, b"", Timeouts(first_byte=0.2))
    with pytest.raises(UpstreamError, match="could not reach the vendor"):
        await transport.request("POST", "http://127.0.0.1:1/v1", {}, b"", Timeouts())


async def test_closing_an_unfinished_response_aborts_the_connection() -> None:
    closed = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await reader.read()  # returns when the client hangs up
        closed.set()

    transport = HttpTransport()
    async with Server(slow) as server:
        resp = await transport.request("POST", server.url, {}, b"", Timeouts())
        chunks: AsyncIterator[bytes] = resp.iter_bytes()
        assert await chunks.__anext__() == b"hello"
        resp.close()
        await asyncio.wait_for(closed.wait(), 2)


async def test_stream_idle_timeout_counts_the_vendor_not_a_slow_reader() -> None:
    """The idle deadline runs while a piece is awaited: a vendor that stalls times out, a caller that takes
    long over a piece (a slow client downstream) does not."""
    stall = asyncio.Event()

    async def chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # the pooled connection carries the second request
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"5\r\nworld\r\n")
            await writer.drain()
            if stall.is_set():
                await asyncio.sleep(5)
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    transport = HttpTransport()
    async with Server(chunks) as server:
        resp = await transport.request("POST", server.url, {}, b"", Timeouts(idle=0.2))
        got = []
        async for piece in resp.iter_bytes():
            got.append(piece)
            await asyncio.sleep(0.4)  # twice the idle timeout, spent by the reader
        assert b"".join(got) == b"helloworld"

        stall.set()
        resp = await transport.request("POST", server.url, {}, b"", Timeouts(idle=0.2))
        pieces = resp.iter_bytes()
        assert await pieces.__anext__() == b"hello"
        assert await pieces.__anext__() == b"world"
        with pytest.raises(UpstreamTimeout, match=r"stalled for longer than the idle timeout of 0\.2s"):
            await pieces.__anext__()
        with pytest.raises(StopAsyncIteration):  # the exchange is over (its connection aborted)
            await pieces.__anext__()
