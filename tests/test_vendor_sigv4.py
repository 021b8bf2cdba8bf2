"""SigV4 against AWS's published test-suite vectors, and the Bedrock event-stream framing."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.core.errors import UpstreamError
from interlock.vendors.bedrock.eventstream import EventStreamDecoder
from interlock.vendors.bedrock.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    canonical_request,
    sign_headers,
    signature,
)
from tests.mock_vendors.eventstream import encode_message

# The AWS SigV4 test suite's fixed inputs (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
DATE = "20150830T123600Z"
BASE = {"host": "example.amazonaws.com", "x-amz-date": DATE}


@pytest.mark.parametrize(("name", "method", "path", "query", "expected"), [
    ("get-vanilla", "GET", "/", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-utf8", "GET", "/ሴ", "", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ("post-vanilla", "POST", "/", "", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
])
def test_aws_sigv4_test_suite(name: str, method: str, path: str, query: str, expected: str) -> None:
    sig, signed = signature(CREDS, method, path, query, BASE, EMPTY_SHA256, DATE, "us-east-1", "service")
    assert signed == "host;x-amz-date"
    assert sig == expected, name


def test_get_vanilla_canonical_request_matches_the_suite() -> None:
    creq, _ = canonical_request("GET", "/", "", BASE, EMPTY_SHA256)
    assert creq == ("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def test_sign_headers_for_bedrock_encodes_the_model_id_path_as_sent() -> None:
    now = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    creds = Credentials("AKIDEXAMPLE", CREDS.secret_access_key, "session-token")
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    headers = sign_headers(creds, "POST", url, b"{}", "us-east-1", "bedrock", {"content-type": "application/json"}, now)
    assert headers["x-amz-security-token"] == "session-token" and headers["x-amz-date"] == DATE
    assert headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=")
    # The path is sent with %3A; the canonical URI encodes the sent path once more (every service but S3).
    creq, _ = canonical_request("POST", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", "",
                                {"host": "h"}, EMPTY_SHA256)
    assert creq.split("\n")[1] == "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse"


def test_eventstream_known_frame_and_crc_checks() -> None:
    frame = encode_message({":event-type": "messageStart", ":content-type": "application/json",
                            ":message-type": "event"}, b'{"role":"assistant"}')
    total, _headers_len = struct.unpack(">II", frame[:8])
    assert total == len(frame) and struct.unpack(">I", frame[8:12])[0] == zlib.crc32(frame[:8])
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    (message,) = EventStreamDecoder().feed(frame)
    assert message.headers[":event-type"] == "messageStart" and message.payload == b'{"role":"assistant"}'
    corrupted = bytearray(frame)
    corrupted[-6] ^= 0x01
    with pytest.raises(UpstreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(corrupted))
    bad_prelude = bytearray(frame)
    bad_prelude[3] ^= 0x01
    with pytest.raises(UpstreamError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(bad_prelude))


def test_eventstream_typed_headers() -> None:
    head = (b"\x04flag\x00" + b"\x03num\x04" + struct.pack(">i", -5) + b"\x02ts\x08" + struct.pack(">q", 1700)
            + b"\x03raw\x06" + struct.pack(">H", 2) + b"\x01\x02")
    total = 12 + len(head) + 4
    prelude = struct.pack(">II", total, len(head))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + head
    (message,) = EventStreamDecoder().feed(body + struct.pack(">I", zlib.crc32(body)))
    assert message.headers == {"flag": True, "num": -5, "ts": 1700, "raw": b"\x01\x02"} and message.payload == b""


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "contentBlockDelta", ":event-type"]), st.binary(max_size=40)),
                min_size=1, max_size=6), st.integers(min_value=1, max_value=30))
def test_eventstream_any_split_decodes_the_same(messages: list[tuple[str, bytes]], size: int) -> None:
    wire = b"".join(encode_message({":event-type": name}, payload) for name, payload in messages)
    decoder = EventStreamDecoder()
    got = []
    for i in range(0, len(wire), size):
        got += decoder.feed(wire[i:i + size])
    assert [(m.headers[":event-type"], m.payload) for m in got] == messages and decoder.pending == 0
