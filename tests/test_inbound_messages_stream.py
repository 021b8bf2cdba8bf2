"""Canonical chunks → Anthropic stream events: the documented event order, checked event by event.

The decoded events are also fed to the official SDK's accumulator, so a stream
that the SDK would assemble differently from the intended message fails here.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from interlock.core.context import RequestContext
from interlock.core.errors import UpstreamError
from interlock.wire.anthropic_stream import AnthropicStreamEncoder
from interlock.wire.sse import SSEDecoder
from tests.anthropic_required import check_event

_EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict[str, Any] | None = None,
          **choice: Any) -> bytes:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-x",
                            "choices": [] if delta is None else [{"index": 0, "delta": delta,
                                                                  "finish_reason": finish, **choice}]}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


USAGE = {"prompt_tokens": 40, "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 30}}


def run(batches: list[list[bytes]], request: dict[str, Any] | None = None) -> tuple[list[tuple[str, dict[str, Any]]],
                                                                                  AnthropicStreamEncoder, list[Any]]:
    ctx = RequestContext("anthropic.messages")
    ctx.requested_model = "anthropic/claude-sonnet-4-5"
    seen: list[Any] = []

    def on_usage(usage: dict[str, Any]) -> float:
        seen.append(usage)
        return 0.25

    encoder = AnthropicStreamEncoder(ctx, request or {"model": "anthropic/claude-sonnet-4-5"}, on_usage)
    raw = b"".join(encoder.encode(batch) for batch in batches) + encoder.finish()
    events = []
    for ev in SSEDecoder().feed(raw):
        assert ev.event is not None, "every Anthropic event is named"
        payload = orjson.loads(ev.data)
        assert payload["type"] == ev.event.decode()
        check_event(payload)  # every always-present field of the TypeScript SDK's types
        events.append((ev.event.decode(), payload))
    return events, encoder, seen


def assemble(events: list[tuple[str, dict[str, Any]]]) -> Any:
    snapshot = None
    buffers: dict[int, bytes] = {}
    for name, payload in events:
        if name == "ping":
            continue
        snapshot = accumulate_event(event=_EVENTS.validate_python(payload), current_snapshot=snapshot,
                                    json_bufs=buffers)
    return snapshot


def test_text_stream_follows_the_documented_order() -> None:
    events, encoder, seen = run([
        [chunk({"role": "assistant", "content": ""})],
        [chunk({"content": "Hello"}), chunk({"content": " world"})],
        [chunk({}, "stop")],
        [chunk(None, usage=USAGE)],
    ])
    assert [name for name, _ in events] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["stop_reason"] is None
    assert start["model"] == "anthropic/claude-sonnet-4-5" and start["id"].startswith("msg_")
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "",
                                                                                     "citations": None}}
    assert events[3][1] == {"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": "Hello"}}
    assert events[6][1] == {"type": "message_delta",
                            "delta": {"stop_reason": "end_turn", "stop_sequence": None, "stop_details": None,
                                      "container": None},
                            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0,
                                      "cache_read_input_tokens": 30, "output_tokens": 12, "cost": 0.25,
                                      "output_tokens_details": None, "server_tool_use": None}}
    assert encoder.usage_seen and seen == [USAGE]
    message = assemble(events)
    assert message.content[0].text == "Hello world"
    assert message.usage.input_tokens == 10 and message.usage.output_tokens == 12


def test_thinking_then_text_then_parallel_tools() -> None:
    events, _, _ = run([[
        chunk({"role": "assistant", "reasoning_content": "Let me"}),
        chunk({"reasoning_content": " think."}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "SIG1"}]}),
        chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": "REDACTED"}]}),
        chunk({"content": "Checking."}),
        chunk({"tool_calls": [{"index": 0, "id": "toolu_A", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "toolu_B", "function": {"name": "get_time", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        chunk(None, usage=USAGE),
    ]])
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start", "ping", "content_block_delta", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop"]
    deltas = [p["delta"] for n, p in events if n == "content_block_delta"]
    assert deltas[:3] == [{"type": "thinking_delta", "thinking": "Let me"},
                          {"type": "thinking_delta", "thinking": " think."},
                          {"type": "signature_delta", "signature": "SIG1"}]
    starts = [p["content_block"] for n, p in events if n == "content_block_start"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[1] == {"type": "redacted_thinking", "data": "REDACTED"}
    assert starts[3] == {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {},
                         "caller": {"type": "direct"}}
    assert [p["index"] for n, p in events if n == "content_block_start"] == [0, 1, 2, 3, 4]
    message = assemble(events)
    assert [b.type for b in message.content] == ["thinking", "redacted_thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].thinking == "Let me think." and message.content[0].signature == "SIG1"
    assert message.content[3].input == {"city": "Paris"} and message.content[4].input == {}
    assert message.stop_reason == "tool_use"


def test_stop_sequence_reported_when_the_vendor_names_it() -> None:
    events, _, _ = run([[chunk({"content": "a"}), chunk({}, "stop", stop_reason="END")]],
                       request={"model": "m", "stop": ["END"]})
    delta = next(p for n, p in events if n == "message_delta")
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END", "stop_details": None,
                              "container": None}
    assert delta["usage"]["output_tokens"] == 0  # no usage from the vendor: the pipeline estimates it


def test_interleaved_tool_arguments_go_to_their_own_block() -> None:
    events, _, _ = run([[
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x":'}},
                              {"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"y":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}},
                              {"index": 1, "function": {"arguments": "2}"}}]}),
        chunk({}, "tool_calls"),
    ]])
    json_deltas = [(p["index"], p["delta"]["partial_json"]) for n, p in events
                   if n == "content_block_delta"]
    assert json_deltas == [(0, '{"x":'), (1, '{"y":'), (0, "1}"), (1, "2}")]


def test_vendor_error_chunk_becomes_an_error_event_and_ends_the_stream() -> None:
    ctx = RequestContext("anthropic.messages")
    encoder = AnthropicStreamEncoder(ctx, {"model": "m"}, lambda usage: None)
    out = encoder.encode([chunk({"content": "partial"}), orjson.dumps({"error": {"message": "overloaded"}})])
    assert out.endswith(b"event: error\ndata: " + orjson.dumps({"type": "error", "error": {
        "type": "api_error", "message": "the vendor failed mid-stream: overloaded"}, "request_id": ctx.id}) + b"\n\n")
    assert encoder.finish() == b"" and encoder.encode([chunk({"content": "more"})]) == b""
    assert ctx.status == 502 and ctx.error is not None


def test_error_event_for_a_pipeline_failure() -> None:
    ctx = RequestContext("anthropic.messages")
    encoder = AnthropicStreamEncoder(ctx, {"model": "m"}, lambda usage: None)
    event = encoder.error(UpstreamError("cut short", code="upstream_stream_truncated"))
    assert event == (b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"cut short"},'
                     b'"request_id":"' + ctx.id.encode() + b'"}\n\n')


def test_empty_stream_still_closes_properly() -> None:
    events, _, _ = run([])
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]


def test_closing_thinking_summary_is_not_repeated() -> None:
    """The Anthropic adapter streams ``reasoning_content`` pieces, then the whole block with its signature."""
    events, _, _ = run([[
        chunk({"reasoning_content": "a"}), chunk({"reasoning_content": "b"}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "ab", "signature": "S"}]}),
        chunk({"content": "done"}), chunk({}, "stop"),
    ]])
    deltas = [p["delta"] for n, p in events if n == "content_block_delta"]
    assert deltas == [{"type": "thinking_delta", "thinking": "a"}, {"type": "thinking_delta", "thinking": "b"},
                      {"type": "signature_delta", "signature": "S"}, {"type": "text_delta", "text": "done"}]
    message = assemble(events)
    assert message.content[0].thinking == "ab" and message.content[0].signature == "S"


def test_thinking_sent_only_as_block_pieces() -> None:
    events, _, _ = run([[
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "x"}]}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "y", "signature": "S"}]}),
    ]])
    assert assemble(events).content[0].thinking == "xy"


def test_malformed_event_becomes_an_error_event_and_ends_the_stream() -> None:
    ctx = RequestContext("anthropic.messages")
    encoder = AnthropicStreamEncoder(ctx, {"model": "m"}, lambda usage: None)
    out = encoder.encode([chunk({"content": "a"}), chunk({"content": "b"}) + b"\n" + chunk({"content": "c"})])
    assert out.endswith(b"event: error\ndata: " + orjson.dumps({"type": "error", "error": {
        "type": "api_error", "message": "the vendor sent a stream event that is not one JSON object (broken JSON or "
                                        "SSE framing); the answer is incomplete."}, "request_id": ctx.id}) + b"\n\n")
    assert encoder.failed and encoder.finish() == b""
    assert ctx.status == 502 and ctx.error is not None and ctx.error.code == "upstream_stream_malformed"


@pytest.mark.parametrize("ours", [None, 0.25])
def test_usage_cost_is_interlocks_or_absent(ours: float | None) -> None:
    encoder = AnthropicStreamEncoder(RequestContext("anthropic.messages"), {"model": "m"}, lambda usage: ours)
    raw = encoder.encode([chunk({"content": "a"}, "stop"), chunk(None, usage={**USAGE, "cost": 9.5})])
    delta = next(orjson.loads(e.data) for e in SSEDecoder().feed(raw + encoder.finish()) if e.event == b"message_delta")
    assert delta["usage"].get("cost") == ours


def test_estimated_usage_is_reported_and_marked() -> None:
    encoder = AnthropicStreamEncoder(RequestContext("anthropic.messages"), {"model": "m"}, lambda usage: None)
    estimate = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "cost": 0.002, "estimated": True}
    raw = encoder.encode([chunk({"content": "a"}, "stop")]) + encoder.finish(estimate)
    delta = next(orjson.loads(e.data) for e in SSEDecoder().feed(raw) if e.event == b"message_delta")
    assert delta["usage"] == {"input_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                              "output_tokens": 3, "cost": 0.002, "estimated": True, "output_tokens_details": None,
                              "server_tool_use": None}


def test_streamed_refusal_is_text_with_stop_details() -> None:
    events, _, _ = run([[chunk({"role": "assistant", "refusal": "I can't "}), chunk({"refusal": "help."}),
                         chunk({}, "content_filter")]])
    texts = [p["delta"]["text"] for n, p in events if n == "content_block_delta"]
    assert texts == ["I can't ", "help."]
    delta = next(p for n, p in events if n == "message_delta")["delta"]
    assert delta["stop_reason"] == "refusal"
    assert delta["stop_details"] == {"type": "refusal", "category": None, "explanation": "I can't help."}
    message = assemble(events)
    assert message.content[0].text == "I can't help." and message.stop_reason == "refusal"
