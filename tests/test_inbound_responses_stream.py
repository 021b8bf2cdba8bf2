"""Canonical chunks → Responses streaming events: order, sequence numbers, and strict validation of each event.

Every event is validated against the official SDK's ``ResponseStreamEvent``
union (pydantic, strict about required fields), so a missing field fails here
rather than in a client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from interlock.core.context import RequestContext
from interlock.core.errors import UpstreamTimeout
from interlock.core.responses import ADMIN
from interlock.ledger.responses_store import SQLiteResponses
from interlock.wire.responses import ResponsesCodec, parse_responses_request
from interlock.wire.responses_stream import ResponsesStreamEncoder
from interlock.wire.sse import SSEDecoder

_EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
USAGE = {"prompt_tokens": 20, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4},
         "completion_tokens_details": {"reasoning_tokens": 3}}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"object": "chat.completion.chunk",
                            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


@pytest.fixture
def codec(tmp_path: Path) -> ResponsesCodec:
    return ResponsesCodec(SQLiteResponses(tmp_path / "state.db"))


def encoder_for(codec: ResponsesCodec, body: dict[str, Any] | None = None) -> ResponsesStreamEncoder:
    request = parse_responses_request(body or {"model": "fast", "input": "hi", "stream": True, "store": False})
    ctx = RequestContext("openai.responses")
    ctx.requested_model = str(request["model"])
    return codec.stream_encoder(ctx, request, lambda usage: 0.5)


#: Each event's required fields in the OpenAPI document's ResponseStreamEvent members (the SDK's
#: pydantic models accept a missing one, so they are checked here too).
_REQUIRED = {
    "response.output_item.added": {"output_index", "item"},
    "response.output_item.done": {"output_index", "item"},
    "response.content_part.added": {"item_id", "output_index", "content_index", "part"},
    "response.content_part.done": {"item_id", "output_index", "content_index", "part"},
    "response.output_text.delta": {"item_id", "output_index", "content_index", "delta", "logprobs"},
    "response.output_text.done": {"item_id", "output_index", "content_index", "text", "logprobs"},
    "response.function_call_arguments.delta": {"item_id", "output_index", "delta"},
    "response.function_call_arguments.done": {"item_id", "name", "output_index", "arguments"},
    "response.reasoning_text.delta": {"item_id", "output_index", "content_index", "delta"},
    "response.reasoning_text.done": {"item_id", "output_index", "content_index", "text"},
    "error": {"code", "message", "param"},
}


def decode(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for ev in SSEDecoder().feed(raw):
        payload = orjson.loads(ev.data)
        assert ev.event is not None and ev.event.decode() == payload["type"]
        _EVENTS.validate_python(payload)
        missing = ({"type", "sequence_number"} | _REQUIRED.get(payload["type"], {"response"})) - payload.keys()
        assert not missing, f"{payload['type']} lacks {missing}"
        events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_text_stream(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    raw = encoder.encode([chunk({"role": "assistant", "content": ""})])
    raw += encoder.encode([chunk({"content": "Hel"}), chunk({"content": "lo"}), chunk({}, "stop")])
    raw += encoder.encode([chunk(None, usage=USAGE)]) + encoder.finish()
    events = decode(raw)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert events[2]["item"]["status"] == "in_progress" and events[2]["output_index"] == 0
    assert events[6]["text"] == "Hello"
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"] == [events[8]["item"]]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"]["input_tokens"] == 20 and final["usage"]["output_tokens_details"]["reasoning_tokens"] == 3
    assert final["usage"]["cost"] == 0.5 and encoder.usage_seen


def test_reasoning_then_function_calls(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    raw = encoder.encode([
        chunk({"reasoning_content": "think"}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "SIG"}]}),
        chunk({"tool_calls": [{"index": 0, "id": "call_A", "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_B", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
    ]) + encoder.finish()
    events = decode(raw)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    output = events[-1]["response"]["output"]
    assert output[0] == {"id": output[0]["id"], "type": "reasoning", "summary": [],
                         "content": [{"type": "reasoning_text", "text": "think"}], "encrypted_content": "SIG"}
    assert [(o["call_id"], o["name"], o["arguments"]) for o in output[1:]] == [("call_A", "f", '{"a":1}'),
                                                                             ("call_B", "g", "{}")]
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.done"] == [0, 1, 2]
    assert "_index" not in events[8]["item"]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [(e["name"], e["arguments"]) for e in done] == [("f", '{"a":1}'), ("g", "{}")]


def test_length_finish_is_incomplete(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    events = decode(encoder.encode([chunk({"content": "cut"}), chunk({}, "length")]) + encoder.finish())
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_failure_is_an_error_then_response_failed(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    raw = encoder.encode([chunk({"content": "par"})])
    raw += encoder.error(UpstreamTimeout("the vendor stream stalled"))
    events = decode(raw)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_timeout" and events[-2]["message"] == "the vendor stream stalled"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "server_error",
                                                                "message": "the vendor stream stalled"}
    assert encoder.finish() == b"" and encoder.encode([chunk({"content": "x"})]) == b""


def test_vendor_error_chunk_fails_the_response(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    events = decode(encoder.encode([chunk({"content": "a"}), orjson.dumps({"error": {"message": "boom"}})]))
    assert events[-1]["type"] == "response.failed" and "boom" in events[-1]["response"]["error"]["message"]


async def test_stored_stream_is_kept_for_follow_ups(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec, {"model": "fast", "input": "hi", "stream": True})
    events = decode(encoder.encode([chunk({"content": "yo"}), chunk({}, "stop")]) + encoder.finish())
    response_id = events[-1]["response"]["id"]
    found = await codec.store.get(response_id, ADMIN)
    assert found is not None and found.response["output"][0]["content"][0]["text"] == "yo"
    assert found.conversation == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]


def test_closing_thinking_summary_is_not_repeated(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    events = decode(encoder.encode([
        chunk({"reasoning_content": "a"}), chunk({"reasoning_content": "b"}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "ab", "signature": "S"}]}),
        chunk({"content": "done"}), chunk({}, "stop")]) + encoder.finish())
    assert [e["delta"] for e in events if e["type"] == "response.reasoning_text.delta"] == ["a", "b"]
    reasoning = events[-1]["response"]["output"][0]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "ab"}] and reasoning["encrypted_content"] == "S"


def test_failure_keeps_the_text_and_arguments_streamed_so_far(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    raw = encoder.encode([chunk({"content": "Let me "}), chunk({"content": "look."}),
                          chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]}),
                          chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]})])
    raw += encoder.error(UpstreamTimeout("the vendor stream stalled"))
    failed = decode(raw)[-1]["response"]
    message, call = failed["output"]
    assert message["content"] == [{"type": "output_text", "text": "Let me look.", "annotations": [], "logprobs": []}]
    assert call["status"] == "incomplete" and call["arguments"] == '{"a": ' and call["call_id"] == "call_1"
    # The open item is the message itself: its text so far, marked incomplete.
    encoder = encoder_for(codec)
    raw = encoder.encode([chunk({"content": "Hel"})]) + encoder.error(UpstreamTimeout("cut"))
    message = decode(raw)[-1]["response"]["output"][0]
    assert message["status"] == "incomplete" and message["content"][0]["text"] == "Hel"


def test_malformed_event_fails_the_response(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    events = decode(encoder.encode([chunk({"content": "a"}), chunk({"content": "b"}) + b"\n" + chunk({"content": "c"})]))
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_stream_malformed"
    assert encoder.failed and encoder.finish() == b""


def test_usage_cost_is_interlocks_or_absent(codec: ResponsesCodec) -> None:
    request = parse_responses_request({"model": "fast", "input": "hi", "stream": True, "store": False})
    ctx = RequestContext("openai.responses")
    encoder = codec.stream_encoder(ctx, request, lambda usage: None)
    vendor = {**USAGE, "cost": 9.5}
    events = decode(encoder.encode([chunk({"content": "a"}), chunk({}, "stop"), chunk(None, usage=vendor)])
                    + encoder.finish())
    assert "cost" not in events[-1]["response"]["usage"]


def test_estimated_usage_is_reported_and_marked(codec: ResponsesCodec) -> None:
    encoder = encoder_for(codec)
    estimate = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "cost": 0.002, "estimated": True}
    events = decode(encoder.encode([chunk({"content": "a"}), chunk({}, "stop")]) + encoder.finish(estimate))
    usage = events[-1]["response"]["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (7, 3, 10)
    assert usage["cost"] == 0.002 and usage["estimated"] is True


def _lp(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()),
            "top_logprobs": [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]}


def _lp_chunk(text: str, entries: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": text}, "logprobs": {"content": entries, "refusal": None},
         "finish_reason": None}]})


@pytest.mark.parametrize("include", [True, False])
def test_output_text_logprobs_when_included(codec: ResponsesCodec, include: bool) -> None:
    body: dict[str, Any] = {"model": "fast", "input": "hi", "stream": True, "store": False, "top_logprobs": 1}
    if include:
        body["include"] = ["message.output_text.logprobs"]
    encoder = encoder_for(codec, body)
    raw = encoder.encode([_lp_chunk("Hel", [_lp("Hel", -0.1)]), _lp_chunk("lo", [_lp("lo", -0.5)]),
                          chunk({}, "stop")]) + encoder.finish()
    events = decode(raw)
    deltas = [e["logprobs"] for e in events if e["type"] == "response.output_text.delta"]
    done = next(e for e in events if e["type"] == "response.output_text.done")
    part = events[-1]["response"]["output"][0]["content"][0]
    if not include:
        assert deltas == [[], []] and done["logprobs"] == [] and part["logprobs"] == []
        return
    assert deltas == [[{"token": "Hel", "logprob": -0.1, "top_logprobs": [{"token": "Hel", "logprob": -0.1}]}],
                      [{"token": "lo", "logprob": -0.5, "top_logprobs": [{"token": "lo", "logprob": -0.5}]}]]
    assert [e["token"] for e in done["logprobs"]] == ["Hel", "lo"]
    assert part["logprobs"] == [_lp("Hel", -0.1), _lp("lo", -0.5)]


def test_include_is_validated() -> None:
    from interlock.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as info:
        parse_responses_request({"model": "m", "input": "hi", "include": ["nope"]})
    assert info.value.param == "include"
    request = parse_responses_request({"model": "m", "input": "hi", "include": ["message.output_text.logprobs"]})
    assert request["logprobs"] is True and request.meta.logprobs
