"""A very fast mock model vendor speaking the OpenAI wire format.

Used by the benchmark harness as the upstream of the gateway (and as the
"direct" baseline). It is written on raw asyncio Protocols with uvloop and a
minimal HTTP/1.1 parser so that it is never the bottleneck of a measurement:

* ``POST /v1/chat/completions`` -> a fixed, realistic ``chat.completion`` JSON
  (with ``usage``), echoing the requested model; or, when the body has
  ``"stream": true``, ``--chunks`` SSE events
  (``data: {chat.completion.chunk}\\n\\n``), a final usage chunk when
  ``stream_options.include_usage`` is set, then ``data: [DONE]\\n\\n``, sent
  with chunked transfer encoding (one HTTP chunk per SSE event);
* ``GET /v1/models`` -> a one-model list; ``GET /healthz`` -> ``ok``;
* anything else -> an OpenAI-style JSON error (404/405/400).

HTTP/1.1 keep-alive (and HTTP/1.0 ``Connection: keep-alive``),
``Content-Length`` and chunked request bodies, ``Expect: 100-continue`` and
pipelined requests (answered in order) are supported: aiohttp, httpx (the
openai SDK), wrk and curl all work against it.

Options: ``--latency-ms`` (delay before the response headers, i.e. time to
first byte), ``--chunks`` (content chunks per stream), ``--chunk-delay-ms``
(pause between stream events; 0 = the whole stream is written at once),
``--api-key`` (when set, requests must carry ``Authorization: Bearer KEY``).

With ``--relay-to HOST:PORT`` the same program is instead a zero-work TCP
relay (no parsing): the harness puts one where the gateway runs to show what
merely adding a hop costs on this machine.

    python bench/mock_upstream.py --port 9101
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import itertools
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, cast

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency of interlock
    _loads = json.loads

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency of interlock on Linux
    uvloop = None  # type: ignore[assignment]

from mock_relay import RelayClient

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024
CREATED = 1732320000

# Fixed-width placeholder replaced by a per-response id (same length, so the
# precomputed Content-Length stays right).
ID_PLACEHOLDER = b"chatcmpl-MOCK000000000000000000000"
ID_PREFIX = b"chatcmpl-mock"
ID_DIGITS = len(ID_PLACEHOLDER) - len(ID_PREFIX)

ANSWER = (
    "Sure! Here is a short overview. A gateway sits between your application and the model "
    "vendors: it authenticates callers, routes each request to the right vendor, enforces "
    "budgets and rate limits, and records what every call cost. Because it speaks the same "
    "wire format as the vendors, clients need no changes beyond the base URL and key."
)
ANSWER_TOKENS = ANSWER.replace(".", " .").replace(",", " ,").split()
PROMPT_TOKENS = 42

STATUS_TEXT = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Payload Too Large",
    431: b"Request Header Fields Too Large",
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Responses:
    """Precomputed response bodies per model name (a bounded cache)."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self._plain: dict[bytes, bytes] = {}
        self._stream: dict[tuple[bytes, bool], list[bytes]] = {}
        self._stream_joined: dict[tuple[bytes, bool], bytes] = {}

    def completion(self, model: str) -> bytes:
        key = model.encode()
        body = self._plain.get(key)
        if body is None:
            completion_tokens = len(ANSWER_TOKENS)
            body = _dumps(
                {
                    "id": ID_PLACEHOLDER.decode(),
                    "object": "chat.completion",
                    "created": CREATED,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": ANSWER,
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": PROMPT_TOKENS,
                        "completion_tokens": completion_tokens,
                        "total_tokens": PROMPT_TOKENS + completion_tokens,
                        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                        "completion_tokens_details": {
                            "reasoning_tokens": 0,
                            "audio_tokens": 0,
                            "accepted_prediction_tokens": 0,
                            "rejected_prediction_tokens": 0,
                        },
                    },
                    "service_tier": "default",
                    "system_fingerprint": "fp_mock",
                }
            )
            if len(self._plain) > 1024:
                self._plain.clear()
            self._plain[key] = body
        return body

    def stream_events(self, model: str, include_usage: bool) -> list[bytes]:
        """Each SSE event already framed as one HTTP/1.1 chunk (size line + data + CRLF)."""
        key = (model.encode(), include_usage)
        framed = self._stream.get(key)
        if framed is None:
            base: dict[str, Any] = {
                "id": ID_PLACEHOLDER.decode(),
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_mock",
            }
            events: list[dict[str, Any]] = []
            n = max(self.chunks, 2)
            for i in range(n):
                if i == 0:
                    delta: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
                    finish = None
                elif i == n - 1:
                    delta, finish = {}, "stop"
                else:
                    delta, finish = {"content": " " + ANSWER_TOKENS[(i - 1) % len(ANSWER_TOKENS)]}, None
                ev = dict(
                    base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                )
                if include_usage:
                    ev["usage"] = None
                events.append(ev)
            if include_usage:
                completion_tokens = n - 2
                events.append(
                    dict(
                        base,
                        choices=[],
                        usage={
                            "prompt_tokens": PROMPT_TOKENS,
                            "completion_tokens": completion_tokens,
                            "total_tokens": PROMPT_TOKENS + completion_tokens,
                            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                            "completion_tokens_details": {
                                "reasoning_tokens": 0,
                                "audio_tokens": 0,
                                "accepted_prediction_tokens": 0,
                                "rejected_prediction_tokens": 0,
                            },
                        },
                    )
                )
            payloads = [b"data: " + _dumps(ev) + b"\n\n" for ev in events] + [b"data: [DONE]\n\n"]
            framed = [b"%x\r\n%s\r\n" % (len(p), p) for p in payloads]
            framed.append(b"0\r\n\r\n")
            if len(self._stream) > 1024:
                self._stream.clear()
                self._stream_joined.clear()
            self._stream[key] = framed
            self._stream_joined[key] = b"".join(framed)
        return framed

    def stream_joined(self, model: str, include_usage: bool) -> bytes:
        self.stream_events(model, include_usage)
        return self._stream_joined[(model.encode(), include_usage)]


class Clock:
    """The HTTP Date header, refreshed once a second."""

    def __init__(self) -> None:
        self.value = b""
        self._tick()

    def _tick(self) -> None:
        self.value = email.utils.formatdate(usegmt=True).encode()
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_later(1.0, self._tick)


class Settings:
    def __init__(self, args: argparse.Namespace) -> None:
        self.latency = max(args.latency_ms, 0.0) / 1000.0
        self.chunk_delay = max(args.chunk_delay_ms, 0.0) / 1000.0
        self.responses = Responses(args.chunks)
        self.auth = ("Bearer " + args.api_key).encode() if args.api_key else None
        self.quiet = args.quiet
        self.ids = itertools.count(1)
        self.clock = Clock()


class HttpProtocol(asyncio.Protocol):
    __slots__ = ("_buf", "_busy", "_closed", "_pending", "_s", "_transport")

    def __init__(self, settings: Settings) -> None:
        self._s = settings
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._busy = False  # a delayed/paced response is in flight: later requests wait
        self._closed = False
        self._pending: list[asyncio.TimerHandle] = []

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same API.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._process()

    # -- parsing ----------------------------------------------------------

    def _process(self) -> None:
        buf = self._buf
        while buf and not self._busy and not self._closed:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._error(431, "request headers too large", close=True)
                return
            head = bytes(buf[:end])
            lines = head.split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ", 2)
            except ValueError:
                self._error(400, "malformed request line", close=True)
                return
            content_length = 0
            chunked = False
            keep_alive = version == b"HTTP/1.1"
            expect_continue = False
            authorization = b""
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    try:
                        content_length = int(value)
                    except ValueError:
                        self._error(400, "bad Content-Length", close=True)
                        return
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    v = value.strip().lower()
                    if v == b"close":
                        keep_alive = False
                    elif v == b"keep-alive":
                        keep_alive = True
                elif name == b"expect":
                    expect_continue = value.strip().lower() == b"100-continue"
                elif name == b"authorization":
                    authorization = value.strip()
            body_start = end + 4
            if chunked:
                try:
                    parsed = _parse_chunked(buf, body_start)
                except ValueError:
                    self._error(400, "malformed chunked body", close=True)
                    return
                if parsed is None:
                    if expect_continue and len(buf) == body_start:
                        self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    return
                body, consumed = parsed
            else:
                if content_length > MAX_BODY:
                    self._error(413, "request body too large", close=True)
                    return
                consumed = body_start + content_length
                if len(buf) < consumed:
                    if expect_continue and len(buf) == body_start:
                        self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    return
                body = bytes(buf[body_start:consumed])
            del buf[:consumed]
            self._handle(method, target, body, keep_alive, authorization)

    # -- routing ----------------------------------------------------------

    def _handle(
        self, method: bytes, target: bytes, body: bytes, keep_alive: bool, authorization: bytes
    ) -> None:
        path = target.split(b"?", 1)[0]
        s = self._s
        if path == b"/v1/chat/completions" or path == b"/chat/completions":
            if method != b"POST":
                self._error(405, "use POST", keep_alive=keep_alive)
                return
            if s.auth is not None and authorization != s.auth:
                self._error(401, "Incorrect API key provided.", keep_alive=keep_alive, code="invalid_api_key")
                return
            try:
                req = _loads(body)
                model = req["model"]
                if not isinstance(model, str) or not isinstance(req.get("messages"), list):
                    raise TypeError
            except Exception:  # noqa: BLE001 - any malformed body is a 400
                self._error(
                    400,
                    "the body must be a JSON chat request with 'model' and 'messages'",
                    keep_alive=keep_alive,
                )
                return
            if req.get("stream") is True:
                opts = req.get("stream_options")
                include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
                self._stream(model, include_usage, keep_alive)
            else:
                self._completion(model, keep_alive)
        elif path == b"/v1/models" or path == b"/models":
            payload = _dumps(
                {
                    "object": "list",
                    "data": [
                        {"id": "bench-model", "object": "model", "created": CREATED, "owned_by": "mock"}
                    ],
                }
            )
            self._send(200, b"application/json", payload, keep_alive)
        elif path == b"/healthz":
            self._send(200, b"text/plain; charset=utf-8", b"ok\n", keep_alive)
        else:
            self._error(404, "Unknown request URL: " + target.decode("latin-1"), keep_alive=keep_alive)

    # -- responses --------------------------------------------------------

    def _new_id(self) -> bytes:
        return ID_PREFIX + b"%0*x" % (ID_DIGITS, next(self._s.ids))

    def _head(self, status: int, content_type: bytes, keep_alive: bool, extra: bytes) -> bytes:
        return b"".join(
            (
                b"HTTP/1.1 %d %s\r\n" % (status, STATUS_TEXT.get(status, b"Unknown")),
                b"Date: ",
                self._s.clock.value,
                b"\r\nServer: interlock-mock\r\nContent-Type: ",
                content_type,
                b"\r\n",
                extra,
                b"" if keep_alive else b"Connection: close\r\n",
                b"\r\n",
            )
        )

    def _completion(self, model: str, keep_alive: bool) -> None:
        rid = self._new_id()
        body = self._s.responses.completion(model).replace(ID_PLACEHOLDER, rid, 1)
        extra = b"Content-Length: %d\r\nx-request-id: req_%s\r\nopenai-processing-ms: 1\r\n" % (
            len(body),
            rid[9:],
        )
        data = self._head(200, b"application/json", keep_alive, extra) + body
        self._deliver([data], keep_alive)

    def _stream(self, model: str, include_usage: bool, keep_alive: bool) -> None:
        rid = self._new_id()
        extra = b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\nx-request-id: req_%s\r\n" % rid[9:]
        head = self._head(200, b"text/event-stream; charset=utf-8", keep_alive, extra)
        responses = self._s.responses
        if self._s.chunk_delay > 0:
            parts = [head] + [
                p.replace(ID_PLACEHOLDER, rid) for p in responses.stream_events(model, include_usage)
            ]
        else:
            parts = [head + responses.stream_joined(model, include_usage).replace(ID_PLACEHOLDER, rid)]
        self._deliver(parts, keep_alive)

    def _send(self, status: int, content_type: bytes, body: bytes, keep_alive: bool) -> None:
        data = self._head(status, content_type, keep_alive, b"Content-Length: %d\r\n" % len(body)) + body
        self._deliver([data], keep_alive)

    def _error(
        self,
        status: int,
        message: str,
        *,
        keep_alive: bool = True,
        close: bool = False,
        code: str | None = None,
    ) -> None:
        etype = "invalid_request_error"
        body = _dumps({"error": {"message": message, "type": etype, "param": None, "code": code}})
        if close:
            keep_alive = False
            self._buf.clear()
        data = (
            self._head(status, b"application/json", keep_alive, b"Content-Length: %d\r\n" % len(body)) + body
        )
        # Errors are answered at once (no simulated latency).
        self._write(data)
        if not keep_alive:
            self._close()

    def _deliver(self, parts: list[bytes], keep_alive: bool) -> None:
        """Write the parts: the first after --latency-ms, the next ones --chunk-delay-ms apart."""
        s = self._s
        if s.latency <= 0 and (len(parts) == 1 or s.chunk_delay <= 0):
            self._write(b"".join(parts) if len(parts) > 1 else parts[0])
            if not keep_alive:
                self._close()
            return
        self._busy = True
        loop = asyncio.get_running_loop()
        n = len(parts)
        index = 0

        def step() -> None:
            nonlocal index
            self._pending.clear()
            if self._closed:
                return
            while index < n:
                self._write(parts[index])
                index += 1
                if index < n and s.chunk_delay > 0:
                    self._pending.append(loop.call_later(s.chunk_delay, step))
                    return
            self._busy = False
            if not keep_alive:
                self._close()
            elif self._buf:
                self._process()

        if s.latency > 0:
            self._pending.append(loop.call_later(s.latency, step))
        else:
            step()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()


def _parse_chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at pos: (body, end) when complete, None if more data is needed.

    Raises ValueError when the body is malformed or too large.
    """
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_field = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        size = int(size_field, 16)  # ValueError when malformed
        pos = eol + 2
        if size == 0:
            # Skip trailers until the empty line.
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(out), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2
        if len(out) > MAX_BODY:
            raise ValueError("chunked body too large")


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    factory: Callable[[], asyncio.Protocol]
    if args.relay_to:
        relay_host, _, relay_port = args.relay_to.rpartition(":")
        factory = lambda: RelayClient(relay_host or "127.0.0.1", int(relay_port))  # noqa: E731
        what = f"TCP relay to {args.relay_to}"
    else:
        settings = Settings(args)
        factory = lambda: HttpProtocol(settings)  # noqa: E731
        what = (
            f"mock upstream (latency {args.latency_ms:g} ms, chunks {args.chunks}, "
            f"chunk delay {args.chunk_delay_ms:g} ms)"
        )
    server = await loop.create_server(factory, args.host, args.port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not args.quiet:
        print(
            f"{what} listening on {args.host}:{args.port} (pid {os.getpid()}, loop {type(loop).__module__})",
            flush=True,
        )
    async with server:
        await stop.wait()
    server.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A fast mock OpenAI-compatible vendor for benchmarks.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9101)
    p.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before the response headers (default 0)"
    )
    p.add_argument(
        "--chunks", type=int, default=100, help="chat.completion.chunk events per stream (default 100)"
    )
    p.add_argument(
        "--chunk-delay-ms",
        type=float,
        default=0.0,
        help="pause between stream events; 0 = no pacing (default)",
    )
    p.add_argument("--api-key", default="", help="require 'Authorization: Bearer KEY' (default: accept any)")
    p.add_argument(
        "--relay-to",
        metavar="HOST:PORT",
        default="",
        help="instead of answering, relay raw TCP to HOST:PORT (a zero-work proxy, for reference figures)",
    )
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.monotonic()
    try:
        if uvloop is not None:
            uvloop.run(serve(args))
        else:
            asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"mock upstream: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        sys.exit(1)
    if not args.quiet:
        print(f"mock upstream stopped after {time.monotonic() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
