"""Anthropic Messages ⇄ canonical: each translation both ways, against fixtures written from Anthropic's docs."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from interlock.core.context import RequestContext
from interlock.core.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
)
from interlock.wire.anthropic_messages import (
    AnthropicMessagesCodec,
    effort_for_budget,
    error_body,
    parse_messages_request,
)
from interlock.wire.anthropic_stream import anthropic_usage, render_message, stop_reason

# -------------------------------------------------------------- requests in

#: A request using every block type the Messages docs describe for user and assistant turns.
FULL_REQUEST: dict[str, Any] = {
    "model": "anthropic/claude-sonnet-4-5",
    "max_tokens": 2048,
    "system": [{"type": "text", "text": "You are terse."},
               {"type": "text", "text": "Long policy...", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "title": "spec.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
             "cache_control": {"type": "ephemeral"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me look.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "I'll check the weather."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "15 degrees"},
            {"type": "tool_result", "tool_use_id": "toolu_01B", "is_error": True,
             "content": [{"type": "text", "text": "clock broken"}], "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Thanks"},
        ]},
    ],
    "tools": [{"name": "get_weather", "description": "Weather by city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
               "cache_control": {"type": "ephemeral"}},
              {"name": "get_time", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "metadata": {"user_id": "user-42"},
    "stream": True,
}


def test_full_request_translates_every_block() -> None:
    out = parse_messages_request(json.loads(json.dumps(FULL_REQUEST)))
    assert out["model"] == "anthropic/claude-sonnet-4-5"
    assert out["max_completion_tokens"] == 2048
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["stop"] == ["END"]
    assert (out["temperature"], out["top_p"], out["top_k"], out["user"]) == (0.5, 0.9, 40, "user-42")
    assert out["reasoning_effort"] == "low"
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False
    assert out["tools"][0] == {"type": "function", "cache_control": {"type": "ephemeral"}, "function": {
        "name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    system, user, assistant, result_a, result_b, thanks = out["messages"]
    assert system == {"role": "system", "content": [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Long policy...", "cache_control": {"type": "ephemeral"}}]}
    assert user["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "spec.pdf"},
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "plain notes"},
    ]
    assert assistant["content"] == "I'll check the weather."
    assert assistant["tool_calls"] == [
        {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "toolu_01B", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    assert assistant["reasoning_content"] == "Let me look."
    assert assistant["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Let me look.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}]
    assert result_a == {"role": "tool", "tool_call_id": "toolu_01A", "content": "15 degrees"}
    assert result_b == {"role": "tool", "tool_call_id": "toolu_01B", "is_error": True, "content": [
        {"type": "text", "text": "clock broken", "cache_control": {"type": "ephemeral"}}]}
    assert thanks == {"role": "user", "content": "Thanks"}


def test_plain_system_and_string_content_stay_strings() -> None:
    out = parse_messages_request({"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "a"},
                                                                             {"type": "text", "text": "b"}],
                                  "messages": [{"role": "user", "content": "hi"}]})
    assert out["messages"] == [{"role": "system", "content": "a\n\nb"}, {"role": "user", "content": "hi"}]
    assert "stream" not in out and "tools" not in out


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"),
    ({"type": "none"}, "none"),
    ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
])
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    out = parse_messages_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                                  "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": choice})
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (4095, "low"), (4096, "medium"), (16384, "high")])
def test_thinking_budget_maps_to_effort(budget: int, effort: str) -> None:
    assert effort_for_budget(budget) == effort


def test_disabled_thinking_and_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = parse_messages_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                                  "thinking": {"type": "disabled"},
                                  "output_config": {"format": {"type": "json_schema", "schema": schema},
                                                    "effort": "max"}})
    assert out["reasoning_effort"] == "high"
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "output", "schema": schema, "strict": True}}


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}, "model"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "file", "file_id": "f"}}]}]}, "messages.0.content.0.source.type"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
     "messages.0.content.0.tool_use_id"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "x"}]}]}, "messages.0.content.0.signature"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_use"}]}]},
     "messages.0.content.0.type"),
    ({"model": "m", "max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]},
     "temperature"),
    ({"model": "m", "max_tokens": 5, "stop_sequences": "END", "messages": [{"role": "user", "content": "x"}]},
     "stop_sequences"),
    ({"model": "m", "max_tokens": 5, "tool_choice": {"type": "tool", "name": "g"},
      "tools": [{"name": "f", "input_schema": {}}], "messages": [{"role": "user", "content": "x"}]},
     "tool_choice.name"),
    ({"model": "m", "max_tokens": 5, "tools": [{"name": "f"}], "messages": [{"role": "user", "content": "x"}]},
     "tools.0.input_schema"),
    ({"model": "m", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2000},
      "messages": [{"role": "user", "content": "x"}]}, "thinking.budget_tokens"),
    ({"model": "m", "max_tokens": 5, "metadata": {"user_id": 5}, "messages": [{"role": "user", "content": "x"}]},
     "metadata.user_id"),
])
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_messages_request(body)
    assert info.value.param == param
    assert info.value.message.startswith(param + ":")


def test_count_tokens_body_needs_no_max_tokens() -> None:
    out = parse_messages_request({"model": "m", "messages": [{"role": "user", "content": "x"}]},
                                 require_max_tokens=False)
    assert "max_completion_tokens" not in out


async def test_codec_parse_rejects_bad_json() -> None:
    with pytest.raises(InvalidRequest):
        await AnthropicMessagesCodec().parse(b"{nope", object())


# -------------------------------------------------------------- answers out

USAGE = {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130, "cost": 0.00042,
         "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 25},
         "completion_tokens_details": {"reasoning_tokens": 10}}


def test_usage_excludes_cache_reads_and_writes_from_input() -> None:
    assert anthropic_usage(USAGE) == {"input_tokens": 15, "cache_creation_input_tokens": 25,
                                      "cache_read_input_tokens": 60, "output_tokens": 30, "cost": 0.00042,
                                      "cache_creation": {"ephemeral_5m_input_tokens": 25,
                                                         "ephemeral_1h_input_tokens": 0},
                                      "output_tokens_details": {"thinking_tokens": 10}, "server_tool_use": None,
                                      "service_tier": None, "inference_geo": None}
    legacy = anthropic_usage({"prompt_tokens": 50, "completion_tokens": 1, "cache_creation_input_tokens": 20})
    assert legacy["input_tokens"] == 30 and legacy["cache_creation_input_tokens"] == 20


@pytest.mark.parametrize(("choice", "tools", "expected"), [
    ({"finish_reason": "stop"}, False, ("end_turn", None)),
    ({"finish_reason": "length"}, False, ("max_tokens", None)),
    ({"finish_reason": "tool_calls"}, True, ("tool_use", None)),
    ({"finish_reason": "stop"}, True, ("tool_use", None)),
    ({"finish_reason": "content_filter"}, False, ("refusal", None)),
    ({"finish_reason": "stop", "stop_sequence": "END"}, False, ("stop_sequence", "END")),
    ({"finish_reason": "stop", "stop_reason": "END"}, False, ("stop_sequence", "END")),
    ({"finish_reason": "stop", "stop_reason": "OTHER"}, False, ("end_turn", None)),
])
def test_stop_reasons(choice: dict[str, Any], tools: bool, expected: tuple[str, str | None]) -> None:
    assert stop_reason(choice, ["END"], tools) == expected


def test_completion_renders_thinking_text_and_tool_use() -> None:
    data = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-x", "usage": USAGE, "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking.", "reasoning_content": "hmm",
            "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "sig=="}],
            "tool_calls": [{"id": "call_9", "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}}]}
    message = render_message("msg_1", "anthropic/claude-sonnet-4-5", {}, data, USAGE)
    assert message == {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "anthropic/claude-sonnet-4-5",
        "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig=="},
                    {"type": "text", "text": "Checking.", "citations": None},
                    {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "Paris"},
                     "caller": {"type": "direct"}}],
        "stop_reason": "tool_use", "stop_sequence": None, "stop_details": None, "container": None,
        "usage": {"input_tokens": 15, "cache_creation_input_tokens": 25, "cache_read_input_tokens": 60,
                  "output_tokens": 30, "cost": 0.00042,
                  "cache_creation": {"ephemeral_5m_input_tokens": 25, "ephemeral_1h_input_tokens": 0},
                  "output_tokens_details": {"thinking_tokens": 10}, "server_tool_use": None,
                  "service_tier": None, "inference_geo": None}}


def test_refusal_has_stop_details_and_tier_maps() -> None:
    data = {"service_tier": "default", "choices": [{"finish_reason": "content_filter", "message": {
        "role": "assistant", "content": None, "refusal": "I can't help with that."}}]}
    message = render_message("msg_1", "m", {}, data, None)
    assert message["stop_reason"] == "refusal"
    assert message["stop_details"] == {"type": "refusal", "category": None, "explanation": "I can't help with that."}
    assert message["content"] == [{"type": "text", "text": "I can't help with that.", "citations": None}]
    assert message["usage"]["service_tier"] == "standard"
    assert message["usage"]["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}


def test_reasoning_details_and_bad_tool_arguments_are_kept() -> None:
    data = {"choices": [{"finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "reasoning_details": [{"type": "reasoning.text", "text": "t", "signature": "s"},
                              {"type": "reasoning.encrypted", "data": "enc"}],
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{not json"}}]}}]}
    content = render_message("msg_1", "m", {}, data, None)["content"]
    assert content == [{"type": "thinking", "thinking": "t", "signature": "s"},
                       {"type": "redacted_thinking", "data": "enc"},
                       {"type": "tool_use", "id": "c", "name": "f", "input": {"_raw_arguments": "{not json"},
                        "caller": {"type": "direct"}}]


def test_codec_completion_uses_request_id_and_caller_model() -> None:
    ctx = RequestContext("anthropic.messages")
    ctx.requested_model = "fast"
    data = {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}], "usage": USAGE}
    body = orjson.loads(AnthropicMessagesCodec().completion(ctx, {"model": "fast"}, data))
    assert body["id"] == "msg_" + ctx.id[4:]
    assert body["model"] == "fast" and body["content"] == [{"type": "text", "text": "hi", "citations": None}]


# -------------------------------------------------------------- errors


@pytest.mark.parametrize(("err", "status", "etype"), [
    (InvalidRequest("bad"), 400, "invalid_request_error"),
    (AuthenticationFailed("who"), 401, "authentication_error"),
    (GatewayError("no", status=403), 403, "permission_error"),
    (ModelNotFound("gone"), 404, "not_found_error"),
    # The SDKs' ErrorType has no request_too_large: a 413 is an invalid request.
    (PayloadTooLarge("big"), 413, "invalid_request_error"),
    (GatewayError("late", status=504), 504, "timeout_error"),
    (GatewayError("pay", status=402), 402, "billing_error"),
    (RateLimited("slow"), 429, "rate_limit_error"),
    (UpstreamError("vendor"), 502, "api_error"),
    (GatewayError("busy", status=529), 529, "overloaded_error"),
    (GatewayError("odd", status=422), 422, "invalid_request_error"),
])
def test_errors_in_anthropic_shape(err: GatewayError, status: int, etype: str) -> None:
    assert err.status == status
    assert orjson.loads(error_body(err)) == {"type": "error", "error": {"type": etype, "message": err.message},
                                             "request_id": None}
    assert orjson.loads(error_body(err, "req_1"))["request_id"] == "req_1"
