"""interlock's own HTTP/1.1 server (server/h1.py), spoken to over raw sockets byte by byte.

Each test runs an ``H1Server`` on a uvloop loop in a thread with a small RSGI
app, and a plain blocking socket as the client, so framing (keep-alive,
pipelining, chunked bodies both ways, 100-continue, HTTP/1.0) and every refusal
is checked on the wire, not through a client library that would hide it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.server.h1 import H1Server

Handler = Callable[[Any, Any], Any]


class Running:
    """An H1Server in a background thread; ``events`` records what the app saw."""

    def __init__(self, app: Handler, **options: float) -> None:
        self.app = app
        self.options = options
        self.events: list[Any] = []
        self.loop = uvloop.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.server: H1Server | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = H1Server(self.app, self.loop, **self.options)  # type: ignore[arg-type]
        listener = self.loop.run_until_complete(
            self.loop.create_server(self.server.protocol, "127.0.0.1", 0))
        self.port = listener.sockets[0].getsockname()[1]
        self.server.start()
        self.ready.set()
        self.loop.run_forever()
        listener.close()
        self.server.abort_all()
        self.loop.run_until_complete(asyncio.sleep(0.01))
        self.loop.close()

    def __enter__(self) -> Running:
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return sock


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response off the socket (Content-Length, chunked or close-delimited); leftovers stay in ``buf``."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a full head: {bytes(buf)!r}")
        buf += data
    end = buf.index(b"\r\n\r\n")
    lines = buf[:end].decode("latin-1").split("\r\n")
    del buf[:end + 4]
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status == 100:
        return status, headers, b""
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(buf) < size:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed inside the body")
            buf += data
        body = bytes(buf[:size])
        del buf[:size]
        return status, headers, body
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            eol = buf.index(b"\r\n")
            size = int(buf[:eol], 16)
            del buf[:eol + 2]
            while len(buf) < size + 2:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed inside a chunk")
                buf += data
            assert buf[size:size + 2] == b"\r\n", "chunk data must end with CRLF"
            body += bytes(buf[:size])
            del buf[:size + 2]
            if size == 0:
                return status, headers, body
    body = bytes(buf)
    buf.clear()
    while data := sock.recv(65536):
        body += data
    return status, headers, body


def closed(sock: socket.socket, wait: float = 2.0) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False


async def echo(scope: Any, proto: Any) -> None:
    body = await proto()
    answer = {"method": scope.method, "path": scope.path, "query": scope.query_string,
              "headers": dict(scope.headers), "body": body.decode("latin-1")}
    proto.response_bytes(200, [("content-type", "application/json")], json.dumps(answer).encode())


@pytest.fixture
def echo_server() -> Iterator[Running]:
    with Running(echo) as running:
        yield running


def test_keep_alive_and_pipelining_answer_in_order(echo_server: Running) -> None:
    sock = echo_server.connect()
    buf = bytearray()
    sock.sendall(b"POST /a?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
    status, headers, body = read_response(sock, buf)
    assert status == 200 and "connection" not in headers and "date" in headers
    seen = json.loads(body)
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == ("POST", "/a", "x=1", "abc")
    # Two requests in one write: both answered, in order, on the same connection.
    sock.sendall(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\nPOST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
    first = json.loads(read_response(sock, buf)[2])
    second = json.loads(read_response(sock, buf)[2])
    assert (first["path"], second["path"], second["body"]) == ("/one", "/two", "hi")
    sock.close()


def test_absolute_form_targets_are_reduced_to_the_path(echo_server: Running) -> None:
    sock = echo_server.connect()
    sock.sendall(b"GET http://gw.example:8400/v1/models?x=1 HTTP/1.1\r\nHost: gw.example\r\n\r\n")
    seen = json.loads(read_response(sock, bytearray())[2])
    assert (seen["path"], seen["query"]) == ("/v1/models", "x=1")
    sock.sendall(b"GET ?only=query HTTP/1.1\r\nHost: t\r\n\r\n")  # no path at all: refused, not a crash
    assert read_response(sock, bytearray())[0] == 400


def test_headers_are_lower_case_and_repeats_joined(echo_server: Running) -> None:
    sock = echo_server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Tag: a\r\nx-tag: b\r\nAuthorization:  Bearer k \r\n\r\n")
    seen = json.loads(read_response(sock, bytearray())[2])
    assert seen["headers"]["x-tag"] == "a, b"
    assert seen["headers"]["authorization"] == "Bearer k"


def test_body_split_across_packets_and_chunked_bodies(echo_server: Running) -> None:
    sock = echo_server.connect()
    buf = bytearray()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
    time.sleep(0.05)
    sock.sendall(b"world")
    assert json.loads(read_response(sock, buf)[2])["body"] == "helloworld"
    # Chunked, with a chunk extension and a trailer, sent in awkward pieces.
    for piece in (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
                  b"lo\r\n6\r", b"\n world\r\n0\r\nX-Trailer: 1\r\n", b"\r\n"):
        sock.sendall(piece)
        time.sleep(0.02)
    assert json.loads(read_response(sock, buf)[2])["body"] == "hello world"
    # The connection is still usable afterwards.
    sock.sendall(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
    assert json.loads(read_response(sock, buf)[2])["path"] == "/after"


@pytest.mark.parametrize(("request_bytes", "status", "words"), [
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400, "Conflicting"),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "chunked"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "chunked"),
    (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.1"),
    (b"GARBAGE\r\n\r\n", 400, "request line"),
    (b"GET / HTTP/1.1\r\nBad Header : x\r\n\r\n", 400, "header"),
    (b"GET / HTTP/1.1\r\nno-colon\r\n\r\n", 400, "header"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "chunk size"),
])
def test_refusals_answer_in_openai_shape_and_close(echo_server: Running, request_bytes: bytes, status: int,
                                                   words: str) -> None:
    sock = echo_server.connect()
    sock.sendall(request_bytes)
    got, headers, body = read_response(sock, bytearray())
    assert got == status
    error = json.loads(body)["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error"
    assert headers["connection"] == "close"
    assert closed(sock)


def test_an_oversized_head_gets_431(echo_server: Running) -> None:
    sock = echo_server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert read_response(sock, bytearray())[0] == 431


def test_expect_100_continue_is_answered_before_the_body(echo_server: Running) -> None:
    sock = echo_server.connect()
    buf = bytearray()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert read_response(sock, buf)[0] == 100
    sock.sendall(b"data")
    assert json.loads(read_response(sock, buf)[2])["body"] == "data"


def test_http10_closes_unless_keep_alive_is_asked(echo_server: Running) -> None:
    sock = echo_server.connect()
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    status, headers, _ = read_response(sock, bytearray())
    assert status == 200 and headers["connection"] == "close" and closed(sock)
    sock = echo_server.connect()
    buf = bytearray()
    sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert read_response(sock, buf)[1]["connection"] == "keep-alive"
    sock.sendall(b"GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert json.loads(read_response(sock, buf)[2])["path"] == "/again"


def test_a_half_closed_client_gets_its_answer_then_the_close(echo_server: Running) -> None:
    sock = echo_server.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
    sock.shutdown(socket.SHUT_WR)
    assert json.loads(read_response(sock, bytearray())[2])["body"] == "hi"
    assert closed(sock, 1.0)


def test_connection_close_is_honoured(echo_server: Running) -> None:
    sock = echo_server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert read_response(sock, bytearray())[1]["connection"] == "close"
    assert closed(sock)


async def streamer(scope: Any, proto: Any) -> None:
    out = proto.response_stream(200, [("content-type", "text/event-stream")])
    for i in range(3):
        await out.send_bytes(f"data: {i}\n\n".encode())
    await out.send_bytes(b"")  # an empty write is not a terminating chunk


def test_streaming_responses_are_chunked_and_terminated() -> None:
    with Running(streamer) as srv:
        sock = srv.connect()
        buf = bytearray()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = read_response(sock, buf)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # and the connection lives on
        assert read_response(sock, buf)[2].startswith(b"data: 0")
        # HTTP/1.0 has no chunked coding: the body is delimited by closing the connection.
        sock = srv.connect()
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        status, headers, body = read_response(sock, bytearray())
        assert "transfer-encoding" not in headers and body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        # HEAD: the head only.
        sock = srv.connect()
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        time.sleep(0.1)
        assert sock.recv(65536).endswith(b"\r\n\r\n") and closed(sock)


def test_head_requests_get_no_body(echo_server: Running) -> None:
    sock = echo_server.connect()
    buf = bytearray()
    sock.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.1)
    sock.settimeout(2)
    data = sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: " in head and rest == b""
    sock.sendall(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
    assert json.loads(read_response(sock, buf)[2])["path"] == "/next"


def test_a_large_body_is_delivered_whole_under_back_pressure() -> None:
    received: list[int] = []

    async def slow_reader(scope: Any, proto: Any) -> None:
        total = 0
        async for chunk in proto:
            total += len(chunk)
            await asyncio.sleep(0.001)
        received.append(total)
        proto.response_bytes(200, [], str(total).encode())

    size = 5 * 1024 * 1024
    with Running(slow_reader) as srv:
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
        sock.sendall(b"x" * size)
        assert read_response(sock, bytearray())[2] == str(size).encode()
    assert received == [size]


def test_a_large_streamed_response_waits_for_a_slow_client() -> None:
    piece = b"y" * 65536
    sent: list[int] = []

    async def big(scope: Any, proto: Any) -> None:
        out = proto.response_stream(200, [])
        for i in range(64):
            await out.send_bytes(piece)
            sent.append(i)

    with Running(big) as srv:
        sock = srv.connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.3)  # not reading: the socket fills and send_bytes has to wait
        assert len(sent) < 64
        assert read_response(sock, bytearray())[2] == piece * 64
    assert len(sent) == 64


def test_client_disconnect_resolves_and_stops_a_stream() -> None:
    seen: list[str] = []
    started = threading.Event()

    async def watch(scope: Any, proto: Any) -> None:
        gone = proto.client_disconnect()
        out = proto.response_stream(200, [])
        started.set()
        try:
            while True:
                await out.send_bytes(b"tick\n")
                await asyncio.sleep(0.01)
        except ConnectionError:
            seen.append("send failed")
        await asyncio.wait_for(gone, 1)
        seen.append("disconnect seen")

    with Running(watch) as srv:
        sock = srv.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert started.wait(2)
        time.sleep(0.05)
        sock.close()
        deadline = time.monotonic() + 3
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert seen == ["send failed", "disconnect seen"]


def test_a_failing_or_silent_app_gets_a_500_not_a_hang() -> None:
    failures: list[BaseException] = []

    async def app(scope: Any, proto: Any) -> None:
        if scope.path == "/boom":
            raise RuntimeError("bug")

    with Running(app, on_failure=lambda scope, err: failures.append(err)) as srv:  # type: ignore[arg-type]
        for path in (b"/boom", b"/silent"):
            sock = srv.connect()
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
            status, headers, body = read_response(sock, bytearray())
            assert status == 500 and json.loads(body)["error"]["type"] == "server_error"
            assert headers["connection"] == "close"
    assert [str(e) for e in failures] == ["bug"]


def test_response_headers_cannot_be_split(echo_server: Running) -> None:
    async def app(scope: Any, proto: Any) -> None:
        proto.response_bytes(200, [("x-echo", "a\r\nInjected: yes")], b"ok")

    with Running(app) as srv:
        sock = srv.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        _, headers, body = read_response(sock, bytearray())
        assert "injected" not in headers and body == b"ok"


def test_idle_and_slow_head_connections_are_closed() -> None:
    with Running(echo, head_timeout=0.3, keepalive_timeout=0.3) as srv:
        idle = srv.connect()
        idle.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        read_response(idle, bytearray())
        slow = srv.connect()
        slow.sendall(b"GET / HTTP/1.1\r\nHost:")
        assert closed(idle, 3.0)
        status, _, body = read_response(slow, bytearray())
        assert status == 408 and "did not arrive" in json.loads(body)["error"]["message"]


def test_the_body_of_an_unread_request_does_not_leak_into_the_next() -> None:
    async def early(scope: Any, proto: Any) -> None:  # answers without reading the body
        proto.response_bytes(413, [], b"too big")

    with Running(early) as srv:
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
        status, headers, _ = read_response(sock, bytearray())
        assert status == 413 and headers["connection"] == "close" and closed(sock)


def test_stop_accepting_closes_idle_connections_and_finishes_busy_ones() -> None:
    release = asyncio.Event()

    async def app(scope: Any, proto: Any) -> None:
        if scope.path == "/slow":
            await release.wait()
        proto.response_bytes(200, [], b"done")

    with Running(app) as srv:
        assert srv.server is not None
        idle = srv.connect()
        idle.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        read_response(idle, bytearray())
        busy = srv.connect()
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.1)
        server = srv.server
        srv.loop.call_soon_threadsafe(server.stop_accepting)
        assert closed(idle)
        assert server.busy() == 1
        srv.loop.call_soon_threadsafe(release.set)
        status, headers, body = read_response(busy, bytearray())
        assert (status, body, headers["connection"]) == (200, b"done", "close")
        with contextlib.suppress(OSError):
            assert closed(busy)


_VALID = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",
          b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
          b"GET /x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Running]:
    with Running(echo, head_timeout=0.5) as running:
        yield running


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(_VALID), cut=st.integers(0, 200), junk=st.binary(max_size=64),
       flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4))
def test_mangled_requests_get_an_answer_or_a_close_never_a_crash(fuzz_server: Running, base: bytes, cut: int,
                                                                  junk: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(base[:cut] + junk + base[cut:])
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    sock = fuzz_server.connect()
    sock.settimeout(3)
    with contextlib.suppress(OSError):
        sock.sendall(bytes(data))
        sock.shutdown(socket.SHUT_WR)
    received = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            received += chunk
    sock.close()
    # Whatever came back is well-formed responses: each starts with a status line, never a 500.
    for match in re.finditer(rb"HTTP/1\.1 (\d{3}) ", received):
        assert int(match.group(1)) != 500, received[:300]
    assert received == b"" or received.startswith(b"HTTP/1.1 ")
    # And the server still serves a clean request afterwards.
    probe = fuzz_server.connect()
    probe.sendall(b"GET /alive HTTP/1.1\r\nHost: t\r\n\r\n")
    assert json.loads(read_response(probe, bytearray())[2])["path"] == "/alive"
    probe.close()


def test_a_stalled_body_fails_the_reader_with_a_timeout() -> None:
    seen: list[str] = []

    async def reader(scope: Any, proto: Any) -> None:
        try:
            body = await proto()
        except TimeoutError as exc:
            seen.append(type(exc).__name__)
            proto.response_bytes(408, [], b"stalled")
        else:
            proto.response_bytes(200, [], body)

    with Running(reader, body_timeout=0.3) as srv:
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        status, headers, body = read_response(sock, bytearray())
        assert (status, body, headers["connection"]) == (408, b"stalled", "close")
        assert closed(sock)
        # A body that keeps arriving, slower than the gap allows in total but never stalling, is fine.
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n")
        for byte in b"abcd":
            time.sleep(0.15)
            sock.sendall(bytes([byte]))
        assert read_response(sock, bytearray())[::2] == (200, b"abcd")
    assert seen == ["BodyTimeout"]


def test_100_continue_is_sent_only_when_the_app_waits_for_the_body() -> None:
    async def refuse(scope: Any, proto: Any) -> None:  # answers without reading, as a 401 does
        proto.response_bytes(401, [], b"no")

    with Running(refuse) as srv:
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        status, headers, body = read_response(sock, bytearray())
        assert (status, body, headers["connection"]) == (401, b"no", "close")


def test_refusals_reach_the_hook_with_status_and_reason() -> None:
    seen: list[tuple[int, str]] = []
    with Running(echo, on_refusal=lambda status, reason: seen.append((status, reason))) as srv:  # type: ignore[arg-type]
        for data in (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
                     b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
                     b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"):
            sock = srv.connect()
            sock.sendall(data)
            read_response(sock, bytearray())
            sock.close()
    assert seen == [(400, "invalid_chunked_body"), (400, "invalid_header"), (413, "request_too_large")]


def test_a_body_cut_by_a_half_close_fails_its_reader_at_once() -> None:
    seen: list[str] = []

    async def reader(scope: Any, proto: Any) -> None:
        try:
            await proto()
        except ConnectionError as exc:
            seen.append(type(exc).__name__)
            proto.response_bytes(400, [], b"incomplete")

    with Running(reader, body_timeout=30) as srv:
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        status, _, body = read_response(sock, bytearray())
        assert (status, body) == (400, b"incomplete") and time.monotonic() - started < 2
    assert seen == ["ClientGone"]


def test_a_refusal_after_pipelined_requests_is_answered_after_them_in_order() -> None:
    release = asyncio.Event()

    async def app(scope: Any, proto: Any) -> None:
        if scope.path == "/slow":
            await release.wait()
        proto.response_bytes(200, [], scope.path.encode())

    with Running(app) as srv:
        sock = srv.connect()
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"GET /bad HTTP/1.1\r\nX: \x7f\r\n\r\nGET /never HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.1)
        srv.loop.call_soon_threadsafe(release.set)
        buf = bytearray()
        answers = [read_response(sock, buf) for _ in range(3)]
        assert [(s, b[:7]) for s, _, b in answers] == [(200, b"/slow"), (200, b"/second"), (400, b'{"error')]
        assert closed(sock)


@pytest.mark.parametrize(("data", "options", "status", "code"), [
    (b"POST /x HTTP/1.1\r\nContent-Length: 7\r\n\r\nhi", {}, 400, "incomplete_body"),
    (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n", {}, 400, "incomplete_body"),
    (b"POST /x HTTP/1.1\r\nContent-Length: 7\r\n\r\nhi", {"body_timeout": 0.3}, 408, "request_timeout"),
])
def test_a_body_that_never_arrives_is_the_clients_error_even_if_the_app_lets_it_escape(
        data: bytes, options: dict[str, float], status: int, code: str) -> None:
    # The echo app reads the body without handling its failure; the server answers for it (never a 500).
    with Running(echo, **options) as srv:
        sock = srv.connect()
        sock.settimeout(5)
        sock.sendall(data)
        if not options:
            sock.shutdown(socket.SHUT_WR)  # half-closed before the whole body: it cannot arrive
        got_status, _, body = read_response(sock, bytearray())
        assert (got_status, json.loads(body)["error"]["code"]) == (status, code)
