"""The incremental SSE decoder: any slicing of the bytes gives the same events."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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
