"""The incremental SSE decoder: any slicing of the bytes gives the same events."""

from __future__ import annotations

from interlock.wire.openai_chat import usage_offset
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


def test_usage_detection_without_parsing() -> None:
    assert usage_offset(b'{"choices":[],"usage":{"prompt_tokens":1}}')
    assert usage_offset(b'{"choices": [], "usage": {"prompt_tokens": 1}}')
    assert not usage_offset(b'{"choices":[{"delta":{}}],"usage":null}')
    assert not usage_offset(b'{"choices":[{"delta":{"content":"x"}}]}')


def test_feed_data_keeps_only_payloads_across_splits() -> None:
    for i in range(len(STREAM)):
        decoder = SSEDecoder()
        out = decoder.feed_data(STREAM[:i]) + decoder.feed_data(STREAM[i:])
        assert out == [b'{"a":1}', b'{"b":2}', b"line one\nline two", b"[DONE]"]


def test_chunk_writer_passes_payloads_through_and_prices_usage() -> None:
    from interlock.wire.openai_chat import ChunkWriter

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
