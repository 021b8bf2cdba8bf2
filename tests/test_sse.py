"""The incremental SSE decoder: any slicing of the bytes gives the same events."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.core.context import RequestContext
from interlock.wire.openai_chat import ChunkWriter
from interlock.wire.sse import SSEDecoder

STREAM = (b'data: {"a":1}\n\n'
          b": keep-alive comment\n\n"
          b"event: message_start\ndata: {\"b\":2}\n\n"
          b"data: line one\ndata: line two\n\n"
          b"data: [DONE]\n\n")


def events_of(slices: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    decoder = SSEDecoder()
    out = []
    for piece in slices:
        out.extend((e.event, e.data) for e in decoder.feed(piece))
    assert decoder.pending == b""
    return out


EXPECTED = [(None, b'{"a":1}'), (b"message_start", b'{"b":2}'), (None, b"line one\nline two"), (None, b"[DONE]")]


def test_whole() -> None:
    assert events_of([STREAM]) == EXPECTED


def test_every_split_point() -> None:
    for i in range(len(STREAM)):
        assert events_of([STREAM[:i], STREAM[i:]]) == EXPECTED


def test_byte_by_byte_with_crlf() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert events_of([crlf[i:i + 1] for i in range(len(crlf))]) == EXPECTED


def test_cr_only_line_ends() -> None:
    assert events_of([STREAM.replace(b"\n", b"\r")]) == EXPECTED


def test_feed_data_keeps_only_payloads_across_splits() -> None:
    for i in range(len(STREAM)):
        decoder = SSEDecoder()
        out = decoder.feed_data(STREAM[:i]) + decoder.feed_data(STREAM[i:])
        assert out == [b'{"a":1}', b'{"b":2}', b"line one\nline two", b"[DONE]"]


def test_chunk_writer_passes_payloads_through_and_prices_usage() -> None:
    seen: list[dict[str, object]] = []

    def on_usage(usage: dict[str, object]) -> float:
        seen.append(usage)
        return 0.25

    content = b'{"choices":[{"delta":{"content":"hi"}}]}'
    usage = b'{"choices":[],"usage":{"prompt_tokens":3}}'
    hidden = ChunkWriter(False, on_usage)
    assert hidden.encode([content, usage]) == b"data: " + content + b"\n\n"
    assert hidden.encode([usage]) == b""
    assert hidden.encode([]) == b""
    shown = ChunkWriter(True, on_usage)
    out = shown.encode([content, usage])
    assert out == b"data: " + content + b'\n\ndata: {"choices":[],"usage":{"prompt_tokens":3,"cost":0.25}}\n\n'
    assert shown.usage_seen and len(seen) == 3
    assert not shown.failed and shown.finish() == b"data: [DONE]\n\n"


CONTENT = b'{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"%s"}}]}'


# A payload cut mid-JSON, two events fused by a missing blank line (the simulator's malformed_sse: the decoder
# joins their data lines with a newline), a JSON value that is not an object, an empty object's garbage tail.
# Invalid UTF-8 inside a string, a trailing comma, a bare NUL.
@pytest.mark.parametrize("bad", [CONTENT[:40], (CONTENT % b"b") + b"\n" + (CONTENT % b"c"), b"[1,2]", b'"x"',
                                 b"{} x", CONTENT % b"\xff\xfe", b'{"a":1,}', b"\x00"])
def test_chunk_writer_ends_the_stream_on_a_malformed_event(bad: bytes) -> None:
    ctx = RequestContext("openai.chat")
    writer = ChunkWriter(True, lambda usage: None, ctx)
    out = writer.encode([CONTENT % b"a", bad, CONTENT % b"d"])
    events = [orjson.loads(e.data) for e in SSEDecoder().feed(out)]
    # What came before the bad event is relayed; then OpenAI's mid-stream error event, and nothing more.
    assert events[0]["choices"][0]["delta"]["content"] == "a"
    assert len(events) == 2 and events[1]["error"]["code"] == "upstream_stream_malformed"
    assert events[1]["error"]["type"] == "api_error"
    assert writer.failed and writer.finish() == b"" and writer.encode([CONTENT % b"e"]) == b""
    assert ctx.status == 502 and ctx.error is not None and ctx.error.code == "upstream_stream_malformed"


def test_chunk_writer_reports_a_vendor_error_object_as_a_failure() -> None:
    ctx = RequestContext("openai.chat")
    writer = ChunkWriter(False, lambda usage: None, ctx)
    out = writer.encode([CONTENT % b"a", b'{"error":{"message":"overloaded","type":"server_error"}}'])
    events = [orjson.loads(e.data) for e in SSEDecoder().feed(out)]
    assert events[-1]["error"]["code"] == "upstream_stream_error" and "overloaded" in events[-1]["error"]["message"]
    assert writer.failed and ctx.status == 502


@pytest.mark.parametrize("ours", [None, 0.5])
def test_chunk_writer_never_relays_the_vendors_cost(ours: float | None) -> None:
    usage = b'{"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"cost":9.99,"estimated":false}}'
    out = ChunkWriter(True, lambda u: ours).encode([CONTENT % b"a", usage])
    sent = orjson.loads(SSEDecoder().feed(out)[-1].data)["usage"]
    assert sent == {"prompt_tokens": 3, "completion_tokens": 1, **({"cost": ours} if ours is not None else {})}


def test_chunk_writer_sends_the_estimate_when_the_vendor_sent_no_usage() -> None:
    estimate = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11, "cost": 0.001, "estimated": True}
    writer = ChunkWriter(True, lambda u: None)
    writer.encode([CONTENT % b"a"])
    events = SSEDecoder().feed(writer.finish(estimate))
    assert events[-1].data == b"[DONE]"
    final = orjson.loads(events[0].data)
    assert final == {"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [],
                     "usage": estimate}
    # Without include_usage the client asked for none: the stream ends as it always does.
    assert ChunkWriter(False, lambda u: None).finish(estimate) == b"data: [DONE]\n\n"


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(["data: ", "data:", "event: x\ndata: ", ": ping\ndata: "]),
                                 st.text(alphabet="ab{}\" :", max_size=12)), min_size=1, max_size=8),
       ends=st.sampled_from(["\n", "\r\n"]), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_feed_data_matches_the_full_parser_on_any_split(events: list[tuple[str, str]], ends: str,
                                                        cuts: list[int]) -> None:
    text = "".join(f"{prefix}{data}\n\n" for prefix, data in events).replace("\n", ends).encode()
    expected = [e.data for e in SSEDecoder().feed(text) if e.data]
    decoder = SSEDecoder()
    got: list[bytes] = []
    start = 0
    for cut in [*sorted(c % (len(text) + 1) for c in cuts), len(text)]:
        got += decoder.feed_data(text[start:cut])
        start = cut
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(["data: ", "data:", "event: x\ndata: ", ": ping\ndata: "]),
                                 st.text(alphabet="ab{}\" :\r", max_size=12)), min_size=1, max_size=8),
       ends=st.sampled_from(["\n", "\r\n"]))
def test_feed_data_one_event_per_read(events: list[tuple[str, str]], ends: str) -> None:
    """Each read one whole event (as vendors flush tokens): the one-event fast path, and what it leaves to
    the others (CRs, event names, comments, empty data), give what the full parser gives."""
    pieces = [f"{prefix}{data}\n\n".replace("\n", ends).encode() for prefix, data in events]
    expected = [e.data for e in SSEDecoder().feed(b"".join(pieces)) if e.data]
    decoder = SSEDecoder()
    assert [p for piece in pieces for p in decoder.feed_data(piece)] == expected


def test_chunk_writer_relays_valid_non_ascii_text_byte_for_byte() -> None:
    payload = CONTENT % "héllo ✓ 世界".encode()
    writer = ChunkWriter(False, lambda usage: None)
    assert writer.encode([payload]) == b"data: " + payload + b"\n\n" and not writer.failed


def test_plain_chunks_take_the_relay_fast_path() -> None:
    """The check that lets a chunk through as it is: a plain chunk passes, usage, an error or broken JSON
    does not. (The compiled build once failed every chunk here: the slow path gave the same bytes at
    2.5 times the cost, so only this check shows it.)"""
    from interlock.wire.openai_chat import _plain

    chunk = b'{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}'
    assert _plain(chunk)
    assert _plain(b'{"choices":[],"usage":null}')
    assert _plain('{"delta":"h\u00e9"}'.encode())
    assert not _plain(b'{"choices":[],"usage":{"prompt_tokens":1}}')
    assert not _plain(b'{"error":{"message":"boom"}}')
    assert not _plain(b'{"a":1}{"b":2}') and not _plain(b"[1]") and not _plain(b'{"a":"\xff"}')
