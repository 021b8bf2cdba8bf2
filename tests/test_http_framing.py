"""Strict HTTP/1.1 framing: a raw-socket battery of malformed and smuggling shapes against both engines.

Each shape is sent on its own connection to a gateway (``server.engine``
native, then granian) configured with short limits. Every shape asserts the
exact statuses that come back and that ``GET /smuggled-probe`` - hidden in
the body of the first request, or after a body a lenient parser would end
early - is never served: that request answers 404 naming its path, so its
being served is visible in the bytes. Well-formed controls (the same shapes
done right) are served, and a legitimate pipelined request after them too.

All shapes run in parallel against one gateway per engine (a module fixture
collects the results), so the battery takes a few seconds. Where Granian (its
own Rust parser, hyper) answers differently from the native server (llhttp),
the case says so in ``granian=`` and the README's server section lists it.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway

pytestmark = pytest.mark.slow

HEAD_TIMEOUT = 0.5
BODY_TIMEOUT = 1.0
MAX_BODY = 65536
CONFIG = (f"server: {{head_timeout: {HEAD_TIMEOUT}, body_timeout: {BODY_TIMEOUT}, keepalive_timeout: 3, "
          f"max_body_bytes: {MAX_BODY}, engine: %s}}\n"
          "simulator: {enabled: true, time_scale: 0}\n")

BODY = b'{"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}'
PROBE = b"GET /smuggled-probe HTTP/1.1\r\nHost: t\r\n\r\n"
NEXT = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"  # a legitimate pipelined request
#: BODY padded to just under the body limit (and near Granian's 64 KiB read buffer).
BIG = BODY.replace(b'"hi"', b'"' + b"x" * (MAX_BODY - 100 - len(BODY) + 2) + b'"')
START = b"POST /v1/route/explain HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + MASTER_KEY.encode() + b"\r\n"


def post(*headers: bytes) -> bytes:
    return START + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def cl(n: int | None = None) -> bytes:
    return b"Content-Length: %d" % (len(BODY) if n is None else n)


def chunked(body: bytes = BODY, size: bytes | None = None, ext: bytes = b"") -> bytes:
    return (size if size is not None else b"%x" % len(body)) + ext + b"\r\n" + body + b"\r\n0\r\n\r\n"


TE = b"Transfer-Encoding: chunked"


@dataclass
class Case:
    name: str
    #: Bytes to send; a list sends its pieces with ``pause`` seconds between them.
    data: bytes | list[bytes]
    #: The statuses expected in order from the native server, and from Granian when it differs.
    native: list[int]
    granian: list[int] | None = None
    pause: float = 0.0
    #: The server closes the connection after the last answer (always true for a refusal), and under Granian
    #: when it differs (the app closes after every chunked request there, see server/http.Request.framing_error).
    closes: bool = True
    granian_closes: bool | None = None
    #: The answer must come sooner than this (seconds): refusals are at once, not after a timeout.
    within: float = 1.0
    #: The native refusal's error code (its reason label in /metrics).
    code: str | None = None
    results: dict[str, Result] = field(default_factory=dict)


@dataclass
class Result:
    statuses: list[int]
    bodies: list[bytes]
    raw: bytes
    closed: bool
    #: Seconds from sending to the first answer byte, or to the close when nothing was answered.
    first_answer_after: float


S = b"smuggled"
CASES = [
    # -- controls: the same shapes, well formed, are served (and so is a legitimate pipelined request) ---
    Case("content-length", post(cl()) + BODY + NEXT, [200, 200], closes=False),
    Case("chunked", post(TE) + chunked() + NEXT, [200, 200], closes=False, granian=[200], granian_closes=True),
    Case("chunked, split body", post(TE) + chunked(BODY[:10]).replace(b"0\r\n\r\n", b"")
         + chunked(BODY[10:]) + NEXT, [200, 200], closes=False, granian=[200], granian_closes=True),
    Case("chunk extension", post(TE) + chunked(ext=b';name="quoted value";x=1') + NEXT, [200, 200], closes=False, granian=[200], granian_closes=True),
    Case("trailer fields", post(TE) + chunked().replace(b"0\r\n\r\n", b"0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n")
         + NEXT, [200, 200], closes=False, granian=[200], granian_closes=True),
    Case("leading CRLF before the request line", b"\r\n" + post(cl()) + BODY, [200], closes=False),
    Case("leading empty lines before the request line", b"\r\n\r\n\r\n" + post(cl()) + BODY, [200], closes=False),
    Case("leading bare LFs before the request line", b"\n\n" + post(cl()) + BODY, [200], closes=False),
    Case("OWS before chunked", post(b"Transfer-Encoding: \t chunked") + chunked() + NEXT, [200, 200],
         closes=False, granian=[200], granian_closes=True),
    Case("CHUNKED in capitals", post(b"Transfer-Encoding: CHUNKED") + chunked() + NEXT, [200, 200], closes=False, granian=[200], granian_closes=True),
    Case("content-length with OWS and leading zeros", post(b"Content-Length:   %05d  " % len(BODY)) + BODY + NEXT,
         [200, 200], closes=False),
    Case("obs-text byte in a header value", post(cl(), b"X-Note: caf\xe9") + BODY, [200], closes=False),
    Case("absolute-form target", post(cl()).replace(b" /v1/", b" http://gw.example/v1/", 1) + BODY, [200],
         closes=False),
    Case("pipelined bodies", post(cl()) + BODY + post(TE) + chunked() + NEXT, [200, 200, 200], closes=False, granian=[200, 200], granian_closes=True),
    Case("a body just under max_body_bytes", post(cl(MAX_BODY - 100)) + BIG + NEXT, [200, 200], closes=False),
    Case("Connection: close ends the exchange", post(cl(), b"Connection: close") + BODY + NEXT, [200]),
    # -- CL.TE and TE.CL -----------------------------------------------------------------------------
    Case("CL.TE", post(cl(len(chunked()) + len(PROBE)), TE) + chunked() + PROBE, [400],
         code="content_length_with_transfer_encoding", granian=[200]),
    Case("TE.CL", post(TE, cl(4)) + b"%x\r\n" % len(PROBE) + PROBE + b"\r\n0\r\n\r\n", [400],
         code="content_length_with_transfer_encoding"),
    Case("CL.TE with CL 0", post(cl(0), TE) + chunked() + PROBE, [400], code="content_length_with_transfer_encoding", granian=[200]),
    Case("TE identity with CL", post(b"Transfer-Encoding: identity", cl()) + BODY + PROBE, [400],
         code="content_length_with_transfer_encoding", granian=[400]),
    Case("TE chunked with trailing whitespace", post(b"Transfer-Encoding: chunked \t") + chunked() + PROBE, [400],
         code="invalid_transfer_encoding", granian=[200]),
    Case("TE chunked twice (two headers)", post(TE, TE) + chunked() + PROBE, [400], code="invalid_transfer_encoding"),
    Case("TE chunked, chunked", post(b"Transfer-Encoding: chunked, chunked") + chunked() + PROBE, [400],
         code="invalid_transfer_encoding"),
    Case("TE chunked, identity", post(b"Transfer-Encoding: chunked, identity", cl()) + BODY + PROBE, [400],
         code="invalid_transfer_encoding"),
    Case("TE chunked, identity without CL", post(b"Transfer-Encoding: chunked, identity") + chunked() + PROBE,
         [400], code="invalid_transfer_encoding"),
    Case("TE xchunked", post(b"Transfer-Encoding: xchunked", cl()) + BODY + PROBE, [400],
         code="content_length_with_transfer_encoding"),
    Case("TE xchunked without CL", post(b"Transfer-Encoding: xchunked") + chunked() + PROBE, [400],
         code="invalid_transfer_encoding"),
    Case("TE gzip", post(b"Transfer-Encoding: gzip") + chunked() + PROBE, [400], code="invalid_transfer_encoding"),
    Case("TE gzip, chunked", post(b"Transfer-Encoding: gzip, chunked") + chunked() + PROBE, [501],
         code="unsupported_transfer_coding", granian=[400]),
    Case("TE with a space before the colon", post(b"Transfer-Encoding : chunked", cl()) + BODY + PROBE, [400],
         code="invalid_header"),
    Case("TE with a vertical tab", post(b"Transfer-Encoding:\x0bchunked") + chunked() + PROBE, [400],
         code="invalid_header"),
    Case("TE folded onto the next line", post(b"Transfer-Encoding:\r\n chunked") + chunked() + PROBE, [400],
         code="invalid_header"),
    Case("TE in an HTTP/1.0 request", post(TE).replace(b"HTTP/1.1", b"HTTP/1.0", 1) + chunked() + PROBE, [400],
         code="invalid_transfer_encoding"),
    # -- Content-Length values -------------------------------------------------------------------------
    Case("CL negative", post(b"Content-Length: -1") + BODY + PROBE, [400], code="invalid_content_length"),
    Case("CL with an underscore", post(b"Content-Length: 1_0") + BODY + PROBE, [400], code="invalid_content_length"),
    Case("CL with a plus sign", post(b"Content-Length: +%d" % len(BODY)) + BODY + PROBE, [400],
         code="invalid_content_length"),
    Case("CL superscript two (str.isdigit)", post(b"Content-Length: \xb2") + BODY + PROBE, [400],
         code="invalid_content_length"),
    Case("CL Arabic-Indic digits", post(b"Content-Length: " + "\u0663".encode()) + BODY + PROBE, [400],
         code="invalid_content_length"),
    Case("CL hex", post(b"Content-Length: 0x10") + BODY + PROBE, [400], code="invalid_content_length"),
    Case("CL empty", post(b"Content-Length:") + BODY + PROBE, [400], code="invalid_content_length"),
    Case("CL list of equal values", post(b"Content-Length: %d, %d" % (len(BODY), len(BODY))) + BODY + PROBE, [400],
         code="invalid_content_length"),
    Case("CL twice, differing", post(cl(), cl(len(BODY) + len(PROBE))) + BODY + PROBE, [400],
         code="duplicate_content_length"),
    Case("CL twice, equal", post(cl(), cl()) + BODY + NEXT, [400], code="duplicate_content_length",
         granian=[200, 200], granian_closes=False),
    Case("CL overflowing 64 bits", post(b"Content-Length: 99999999999999999999999") + BODY, [400],
         code="invalid_content_length"),
    Case("CL over max_body_bytes, no body sent", post(cl(MAX_BODY + 1)), [413], code="request_too_large"),
    # -- chunk sizes -------------------------------------------------------------------------------------
    Case("chunk size 0x5a", post(TE) + chunked(size=b"0x%x" % len(BODY)) + PROBE, [400], code="invalid_chunked_body"),
    Case("chunk size 0X5a", post(TE) + chunked(size=b"0X%x" % len(BODY)) + PROBE, [400], code="invalid_chunked_body"),
    Case("chunk size with a leading space", post(TE) + chunked(size=b" %x" % len(BODY)) + PROBE, [400],
         code="invalid_chunked_body"),
    Case("chunk size with a trailing space", post(TE) + chunked(size=b"%x " % len(BODY)) + PROBE, [400],
         code="invalid_chunked_body", granian=[200]),
    Case("chunk size with a trailing tab", post(TE) + chunked(size=b"%x\t" % len(BODY)) + PROBE, [400],
         code="invalid_chunked_body", granian=[200]),
    Case("chunk size with a plus sign", post(TE) + chunked(size=b"+%x" % len(BODY)) + PROBE, [400],
         code="invalid_chunked_body"),
    Case("chunk size negative", post(TE) + b"-1\r\n" + PROBE, [400], code="invalid_chunked_body"),
    Case("chunk size with an underscore", post(TE) + b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n" + PROBE, [400],
         code="invalid_chunked_body"),
    Case("chunk size empty", post(TE) + b"\r\n" + PROBE, [400], code="invalid_chunked_body"),
    Case("chunk size not hex", post(TE) + b"zz\r\n" + PROBE, [400], code="invalid_chunked_body"),
    Case("chunk size 24 hex digits", post(TE) + b"FFFFFFFFFFFFFFFFFFFFFFFF\r\n" + PROBE, [400],
         code="invalid_chunked_body"),
    Case("chunk data longer than its size", post(TE) + chunked(size=b"3") + PROBE, [400],
         code="invalid_chunked_body"),
    Case("chunk data shorter than its size", post(TE) + b"%x\r\n" % (len(BODY) + 5) + BODY + b"\r\n0\r\n\r\n"
         + PROBE, [400], code="invalid_chunked_body"),
    # -- chunk extensions and line ends ----------------------------------------------------------------
    Case("extension ended by a bare LF", post(TE) + b"%x;ext=1\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n" + PROBE,
         [400], code="invalid_chunked_body"),
    Case("extension name ended by a bare LF", post(TE) + b"%x;ext\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n" + PROBE,
         [400], code="invalid_chunked_body"),
    Case("extension with a bare CR", post(TE) + chunked(ext=b";a\rb") + PROBE, [400], code="invalid_chunked_body"),
    Case("chunk size line ended by a bare LF", post(TE) + b"%x\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n" + PROBE,
         [400], code="invalid_chunked_body"),
    Case("chunk data ended by a bare LF", post(TE) + b"%x\r\n" % len(BODY) + BODY + b"\n0\r\n\r\n" + PROBE, [400],
         code="invalid_chunked_body", granian=[200]),
    Case("last chunk ended by bare LFs", post(TE) + b"%x\r\n" % len(BODY) + BODY + b"\r\n0\n\n" + PROBE, [400],
         code="invalid_chunked_body", granian=[200]),
    Case("Content-Length in the trailer", post(TE) + chunked().replace(b"0\r\n\r\n", b"0\r\nContent-Length: 9\r\n\r\n")
         + PROBE, [400], code="content_length_with_transfer_encoding", granian=[200]),
    Case("no CRLF after the last chunk", post(TE) + b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n" + PROBE, [400], granian=[200]),
    # -- header bytes and names ------------------------------------------------------------------------
    Case("bare CR in a header value", post(cl(), b"X-A: 1\rX-B: 2") + BODY + PROBE, [400], code="invalid_header"),
    Case("\\x01 in a header value", post(cl(), b"X-A: 1\x012") + BODY + PROBE, [400], code="invalid_header"),
    Case("\\x7f in a header value", post(cl(), b"X-A: 1\x7f2") + BODY + PROBE, [400], code="invalid_header"),
    Case("NUL in a header value", post(cl(), b"X-A: 1\x002") + BODY + PROBE, [400], code="invalid_header"),
    Case("NUL in a header name", post(cl(), b"X-\x00A: 1") + BODY + PROBE, [400], code="invalid_header"),
    Case("non-token header name", post(cl(), b"X(A): 1") + BODY + PROBE, [400], code="invalid_header"),
    Case("space inside a header name", post(cl(), b"X A: 1") + BODY + PROBE, [400], code="invalid_header"),
    Case("empty header name", post(cl(), b": 1") + BODY + PROBE, [400], code="invalid_header"),
    Case("header line without a colon", post(cl(), b"X-A 1") + BODY + PROBE, [400], code="invalid_header"),
    Case("obs-fold with a space", post(cl(), b"X-A: 1\r\n 2") + BODY + PROBE, [400], code="obs_fold"),
    Case("obs-fold with a tab", post(cl(), b"X-A: 1\r\n\t2") + BODY + PROBE, [400], code="obs_fold"),
    Case("whitespace before the first header", START.replace(b"\r\nHost", b"\r\n Host", 1) + cl() + b"\r\n\r\n"
         + BODY + PROBE, [400], code="obs_fold"),
    Case("header line ended by a bare LF", START + cl() + b"\n\r\n" + BODY + NEXT, [400],
         granian=[200, 200], granian_closes=False),
    Case("request all in bare LFs", START.replace(b"\r\n", b"\n") + cl() + b"\n\n" + BODY + NEXT, [400],
         code="invalid_request_line", granian=[200, 200], granian_closes=False),
    # -- the request line ------------------------------------------------------------------------------
    Case("garbage request line", b"GARBAGE\r\n\r\n" + PROBE, [400], code="invalid_request_line"),
    Case("lower-case method", post(cl()).replace(b"POST", b"post", 1) + BODY + NEXT, [400],
         code="invalid_request_line", granian=[405, 200], granian_closes=False),
    Case("HTTP/1.2", post(cl()).replace(b"HTTP/1.1", b"HTTP/1.2", 1) + BODY + PROBE, [505],
         code="unsupported_http_version", granian=[400]),
    Case("HTTP/2.0 in an HTTP/1 request line", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n" + PROBE, [505],
         code="unsupported_http_version", granian=[400]),
    Case("space in the target", b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n" + PROBE, [400], code="invalid_request_line"),
    Case("control byte in the target", b"GET /a\x01 HTTP/1.1\r\nHost: t\r\n\r\n" + PROBE, [400],
         code="invalid_request_line"),
    Case("NUL in the target", b"GET /a\x00 HTTP/1.1\r\nHost: t\r\n\r\n" + PROBE, [400], code="invalid_request_line"),
    # -- limits and slow clients --------------------------------------------------------------------
    Case("oversized head", post(cl(), b"X-Big: " + b"a" * 70_000) + BODY + PROBE, [431], code="head_too_large"),
    Case("too many header fields", post(cl(), *[b"X-%d: 1" % i for i in range(130)]) + BODY + PROBE, [431],
         code="too_many_headers"),
    Case("chunked body over max_body_bytes", post(TE) + b"%x\r\n" % (MAX_BODY + 10) + b"x" * (MAX_BODY + 10)
         + b"\r\n0\r\n\r\n" + PROBE, [413], code="request_too_large"),
    # llhttp (through httptools) does not expose a chunk's declared size: a size over max_body_bytes is refused
    # once that many bytes arrived (the case above), else the body timeout ends it. Sizes past 64 bits: at once.
    Case("chunk size over max_body_bytes, few bytes sent", [post(TE) + b"%x\r\n" % (MAX_BODY * 4) + b"x" * 100],
         [408], within=BODY_TIMEOUT + 1.5),
    Case("slow head", [b"POST /v1/route/explain HTTP/1.1\r\nHost: t\r\n"], [408], code="head_timeout",
         within=HEAD_TIMEOUT + 1.5, granian=[]),
    Case("bare LFs only", [b"\n\n\n\n"], [408], code="head_timeout", within=HEAD_TIMEOUT + 1.5, granian=[]),
    Case("slow body", [post(cl()) + BODY[:10]], [408], within=BODY_TIMEOUT + 1.5),
    # -- pipelining and upgrades -------------------------------------------------------------------
    Case("a malformed request after a good one", post(cl()) + BODY + b"GET / HTTP/1.1\r\nX: \x01\r\n\r\n" + PROBE,
         [200, 400], code="invalid_header"),
    Case("an upgrade request with a request after it", b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
         b"Upgrade: h2c\r\n\r\n" + PROBE, [200]),
]

_ENGINES = ("native", "granian")


def split_responses(data: bytes) -> tuple[list[int], list[bytes]]:
    """The statuses and bodies of the HTTP/1.1 answers in ``data`` (interim 1xx skipped)."""
    statuses: list[int] = []
    bodies: list[bytes] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines[1:])}
        pos = end + 4
        if 100 <= status < 200:
            continue
        body = b""
        if "content-length" in headers:
            size = int(headers["content-length"])
            body, pos = data[pos:pos + size], pos + size
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                eol = data.index(b"\r\n", pos)
                size = int(data[pos:eol], 16)
                body += data[eol + 2:eol + 2 + size]
                pos = eol + 2 + size + 2
                if size == 0:
                    break
        statuses.append(status)
        bodies.append(body)
    return statuses, bodies


def probe(port: int, case: Case) -> Result:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    pieces = case.data if isinstance(case.data, list) else [case.data]
    started = time.monotonic()
    for i, piece in enumerate(pieces):
        if i:
            time.sleep(case.pause)
        try:
            sock.sendall(piece)
        except OSError:
            break  # refused and closed while sending
    raw = b""
    closed = False
    first = 0.0
    deadline = started + case.within + 1.5
    sock.settimeout(0.4)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if raw and len(split_responses(raw)[0]) >= len(case.native):
                break  # answered; nothing more within 0.4 s (a smuggled answer would be in the same burst)
            continue
        except ConnectionResetError:
            closed = True
        if closed or not data:
            closed = True
            if not raw:
                first = time.monotonic() - started
            break
        if not raw:
            first = time.monotonic() - started
        raw += data
    sock.close()
    statuses, bodies = split_responses(raw)
    return Result(statuses, bodies, raw, closed, first)


def _start(engine: str, home: Path) -> GatewayProcess:
    return start_gateway(home, CONFIG % engine)


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, GatewayProcess]]:
    started = {engine: _start(engine, tmp_path_factory.mktemp(engine)) for engine in _ENGINES}
    try:
        for engine, gw in started.items():
            with ThreadPoolExecutor(max_workers=24) as pool:
                results = list(pool.map(lambda case, port=gw.port: probe(port, case), CASES))
            for case, result in zip(CASES, results, strict=True):
                case.results[engine] = result
        yield started
    finally:
        for gw in started.values():
            gw.stop()


def test_the_battery_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_framing(gateways: dict[str, GatewayProcess], engine: str, case: Case) -> None:
    result = case.results[engine]
    expected = case.native if engine == "native" or case.granian is None else case.granian
    shown = result.raw[:400]
    assert result.statuses == expected, shown
    # Never a second request served out of the first one's body.
    assert b"smuggled-probe" not in result.raw, shown
    assert result.first_answer_after < case.within, (result.first_answer_after, shown)
    closes = case.closes if engine == "native" or case.granian_closes is None else case.granian_closes
    if closes:
        assert result.closed, shown
    if engine == "native" and case.code is not None:
        error = json.loads(result.bodies[-1])["error"]
        assert error["code"] == case.code, error
        assert error["type"] in ("invalid_request_error", "server_error") and error["message"], error


def test_refusals_are_counted_in_metrics(gateways: dict[str, GatewayProcess]) -> None:
    import urllib.request

    gw = gateways["native"]
    request = urllib.request.Request(f"{gw.url}/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        text = resp.read().decode()
    counted: dict[tuple[str, str], float] = {}
    for match in re.finditer(r'^interlock_http_refusals_total\{status="(\d+)",reason="(\w+)"\} (\S+)$', text, re.M):
        counted[(match.group(1), match.group(2))] = float(match.group(3))
    expected: dict[tuple[str, str], int] = {}
    for case in CASES:
        if case.code is not None and case.results["native"].statuses[-1] >= 400:
            key = (str(case.native[-1]), case.code)
            expected[key] = expected.get(key, 0) + 1
    for key, count in expected.items():
        assert counted.get(key, 0) >= count, (key, counted)


def test_a_refusal_after_the_head_is_in_the_format_of_the_api_called(gateways: dict[str, GatewayProcess]) -> None:
    port = gateways["native"].port
    anthropic = probe(port, Case("messages", START.replace(b"/v1/route/explain", b"/v1/messages") + TE + b"\r\n\r\n"
                                 + chunked(size=b"0x%x" % len(BODY)), [400]))
    error = json.loads(anthropic.bodies[0])
    assert anthropic.statuses == [400] and error["type"] == "error", error
    assert error["error"]["type"] == "invalid_request_error" and "chunk" in error["error"]["message"], error
    too_large = probe(port, Case("messages", START.replace(b"/v1/route/explain", b"/v1/messages")
                                 + cl(MAX_BODY + 1) + b"\r\n\r\n", [413]))
    assert too_large.statuses == [413]
    # Anthropic's declared error types (the SDKs' ErrorType) have no request_too_large; refused before any
    # request exists, the body's request_id is null.
    assert json.loads(too_large.bodies[0]) == {"type": "error", "request_id": None, "error": {
        "type": "invalid_request_error", "message": json.loads(too_large.bodies[0])["error"]["message"]}}


def test_peer_host_strips_the_port_of_ipv4_and_ipv6_peers() -> None:
    from interlock.server.http import peer_host

    assert peer_host("203.0.113.9:5123") == "203.0.113.9"
    assert peer_host("[::1]:5123") == "::1"
    assert peer_host("::1:5123") == "::1"
    assert peer_host("203.0.113.9") == "203.0.113.9"
    assert peer_host("") == ""
