"""The vendor client's framing (vendors/http1.py, llhttp) and the outgoing-header checks at config load.

A raw socket server answers with malformed framing; the client must raise a
clear error, never hand back a truncated or mis-framed body. End to end, a
gateway in front of such a vendor answers 502 in the caller's format.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from interlock.config import ConfigError, load_settings
from interlock.core.errors import UpstreamError
from interlock.core.vendor import Timeouts
from interlock.pipeline.dispatch import forwarded_headers
from interlock.vendors.http1 import HTTP1Client, HTTPClientError
from interlock.vendors.registry import VENDOR_TABLE
from interlock.vendors.transport import HttpTransport
from tests.conftest import start_gateway

# -- a raw vendor: answers every request with fixed bytes -----------------------------------------


class RawVendor:
    """A blocking socket server in a thread: reads a request head (+ Content-Length body), sends ``answer``."""

    def __init__(self, answer: bytes, close: bool = True) -> None:
        self.answer = answer
        self.close_after = close
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.heads: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, rest = buf.partition(b"\r\n\r\n")
            self.heads.append(head)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                data = conn.recv(65536)
                if not data:
                    return
                rest += data
            conn.sendall(self.answer)
            if not self.close_after:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def stop(self) -> None:
        self.sock.close()


_OK = b"HTTP/1.1 200 OK\r\n"
_CHUNKED = _OK + b"Transfer-Encoding: chunked\r\n\r\n"
MALFORMED = {
    "negative length": _OK + b"content-length: -1\r\n\r\n" + b"x" * 40,
    "underscore length": _OK + b"content-length: 1_0\r\n\r\n0123456789",
    "plus length": _OK + b"content-length: +10\r\n\r\n0123456789",
    "superscript length": _OK + b"content-length: \xb2\r\n\r\nab",
    "two lengths": _OK + b"content-length: 2\r\ncontent-length: 10\r\n\r\n0123456789",
    "length and chunked": _OK + b"content-length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "hex-prefixed chunk": _CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n",
    "leading space chunk": _CHUNKED + b" 5\r\nhello\r\n0\r\n\r\n",
    "trailing space chunk": _CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n",
    "negative chunk": _CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n",
    "overflowing chunk": _CHUNKED + b"FFFFFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
    "bare LF extension": _CHUNKED + b"5;ext=1\nhello\r\n0\r\n\r\n",
    "bare LF after data": _CHUNKED + b"5\r\nhello\n0\r\n\r\n",
    "chunk longer than said": _CHUNKED + b"3\r\nhello\r\n0\r\n\r\n",
    "bare CR in header": _OK + b"x-a: 1\rx-b: 2\r\ncontent-length: 2\r\n\r\nok",
    "NUL in header": _OK + b"x-a: 1\x00\r\ncontent-length: 2\r\n\r\nok",
    "obs-fold": _OK + b"x-a: 1\r\n folded\r\ncontent-length: 2\r\n\r\nok",
    "bare LF head": b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok",
    "gzip transfer coding": _OK + b"Transfer-Encoding: gzip\r\n\r\nabc",
    "switching protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_a_malformed_answer_is_an_error_never_a_body(name: str) -> None:
    vendor = RawVendor(MALFORMED[name])
    transport = HttpTransport()
    try:
        with pytest.raises(UpstreamError) as info:
            resp = await transport.request("POST", vendor.url, {"content-type": "application/json"}, b"{}",
                                           Timeouts(first_byte=3, idle=3, total=5))
            await resp.read()
        assert "vendor" in info.value.message
    finally:
        await transport.close()
        vendor.stop()


async def test_the_same_answers_well_formed_are_read_whole() -> None:
    """The control: what the malformed cases bend is accepted when it is right (the test above can fail)."""
    for answer, body in ((_OK + b"content-length: 10\r\n\r\n0123456789", b"0123456789"),
                         (_CHUNKED + b"5;ext=1\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\n", b"hello"),
                         (b"HTTP/1.1 100 Continue\r\n\r\n" + _OK + b"content-length: 2\r\n\r\nok", b"ok"),
                         (_OK + b"connection: close\r\n\r\nuntil the end", b"until the end")):
        vendor = RawVendor(answer)
        transport = HttpTransport()
        try:
            resp = await transport.request("POST", vendor.url, {}, b"{}", Timeouts(first_byte=3, total=5))
            assert await resp.read() == body
        finally:
            await transport.close()
            vendor.stop()


async def test_a_header_value_with_crlf_is_never_sent() -> None:
    vendor = RawVendor(_OK + b"content-length: 2\r\n\r\nok")
    client = HTTP1Client()
    try:
        for headers in ({"x-team": "a\r\nx-injected: 1"}, {"x-team": "a\nb"}, {"x-team": "a\x00"},
                        {"x-te\r\nam": "a"}):
            with pytest.raises(HTTPClientError, match="CR, LF or NUL"):
                await client.send("POST", vendor.url, headers, b"", 3)
        with pytest.raises(HTTPClientError, match="whitespace or a control character"):
            await client.send("POST", vendor.url.replace("/v1/", "/v1 HTTP/1.1\x01/"), {}, b"", 3)
        await asyncio.sleep(0.05)
        assert vendor.heads == []
    finally:
        client.close()
        vendor.stop()


def test_forwarded_client_headers_never_carry_crlf() -> None:
    got = forwarded_headers({"x-interlock-simulator-fault": "a\r\nx-injected: 1",
                             "x-interlock-simulator-latency": "fast"}, simulated=True)
    assert got == {"x-interlock-simulator-latency": "fast"}
    assert forwarded_headers({"x-interlock-simulator-latency": "fast"}, simulated=False) is None


# -- config: outgoing headers are checked when the config loads ---------------------------------


def _load(tmp_path: Path, text: str, **env: str) -> object:
    path = tmp_path / "interlock.yaml"
    path.write_text(text)
    return load_settings(path, vendor_table=VENDOR_TABLE, environ=env)


@pytest.mark.parametrize(("text", "env", "fragment"), [
    ('vendors:\n  openai:\n    api_key: k\n    headers:\n      x-team: "a\\r\\nx-injected: 1"\n', {},
     ":5: vendors.openai.headers.x-team: the header value contains CR, LF or NUL"),
    ('vendors:\n  openai:\n    api_key: k\n    headers:\n      x-team: "a\\nb"\n', {},
     ":5: vendors.openai.headers.x-team: the header value contains CR, LF or NUL"),
    ('vendors:\n  openai:\n    api_key: k\n    headers:\n      x-team: "${TEAM}"\n', {"TEAM": "a\x00b"},
     ":5: vendors.openai.headers.x-team: the header value contains CR, LF or NUL"),
    ('vendors:\n  openai:\n    api_key: k\n    headers:\n      "x team": a\n', {},
     ":5: vendors.openai.headers.x team: not a valid HTTP header name"),
    ('vendors:\n  openai:\n    api_key: "${KEY}"\n', {"KEY": "sk-1\r\nx-injected: 1"},
     ":3: vendors.openai.api_key: the key contains CR, LF or NUL"),
    ('vendors:\n  openai:\n    base_url: "https://api.example.com/v1\\r\\nx: 1"\n    api_key: k\n', {},
     ":3: vendors.openai.base_url: the URL contains whitespace or control characters"),
    ('telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n  headers:\n    x-key: "a\\rb"\n', {},
     ":4: telemetry.headers.x-key: the header value contains CR, LF or NUL"),
])
def test_outgoing_headers_with_crlf_are_config_errors(tmp_path: Path, text: str, env: dict[str, str],
                                                      fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings = _load(tmp_path, text, **env)
        from interlock.observability.settings import TelemetrySettings

        TelemetrySettings.from_settings(settings)  # type: ignore[arg-type]
    message = str(info.value)
    assert str(tmp_path / "interlock.yaml") in message and fragment in message, message
    assert "x-injected" not in message and "sk-1" not in message  # the value (maybe a secret) is not printed


def test_an_api_key_from_the_environment_with_a_newline_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"OPENAI_API_KEY .*contains CR, LF or NUL"):
        load_settings(None, vendor_table=VENDOR_TABLE, environ={"OPENAI_API_KEY": "sk-1\n"})


def test_clean_headers_load() -> None:
    settings = load_settings(None, vendor_table=VENDOR_TABLE, environ={"OPENAI_API_KEY": "sk-1"})
    assert settings.vendors["openai"].api_key == "sk-1"


# -- end to end: the gateway answers 502 in the caller's format ----------------------------------


@pytest.fixture
def broken_vendor() -> Iterator[RawVendor]:
    # A valid completion, chunked with a size a lenient parser reads as hex (0x...): main answered 200 with it.
    completion = (b'{"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, '
                  b'"message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}], '
                  b'"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}')
    vendor = RawVendor(_OK + b"content-type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + b"0x%x\r\n" % len(completion) + completion + b"\r\n0\r\n\r\n")
    yield vendor
    vendor.stop()


@pytest.mark.slow
def test_the_gateway_answers_502_for_a_malformed_vendor_answer(tmp_path: Path, broken_vendor: RawVendor) -> None:
    config = (f"vendors:\n  rawvendor:\n    type: openai\n    base_url: http://127.0.0.1:{broken_vendor.port}/v1\n"
              "    timeouts: {first_byte: 3, total: 5}\n")
    gw = start_gateway(tmp_path, config)
    try:
        client = openai.OpenAI(base_url=gw.base_url, api_key="ik-test-master-key-0123456789", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="rawvendor/some-model",
                                           messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 502
        error = info.value.body
        assert isinstance(error, dict) and "vendor" in str(error.get("message", error))
        assert broken_vendor.heads  # the vendor was reached: the 502 is its malformed answer's
    finally:
        gw.stop()
