"""Anthropic Messages adapter: request translation, answers and streams from documented wire bytes, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.core.errors import GatewayError, InvalidRequest, RateLimited, UpstreamError
from interlock.vendors.anthropic.chat import AnthropicAdapter, AnthropicStream, decode_message, encode_request
from interlock.vendors.anthropic.settings import AnthropicSettings
from interlock.vendors.transport import HttpTransport
from tests.mock_vendors.anthropic_render import render_stream
from tests.mock_vendors.canonical import collect, reassemble, vendor_config
from tests.mock_vendors.memory import MemoryResponse
from tests.mock_vendors.server import ScriptedVendor, split_every

FIXTURES = Path(__file__).parent / "mock_vendors" / "fixtures"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a place",
                                            "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                                                           "required": ["location"]}}}


def adapter(vendor: ScriptedVendor, http: HttpTransport, **fields: Any) -> AnthropicAdapter:
    config = vendor_config("anthropic", vendor.url, {"ANTHROPIC_API_KEY": "sk-ant-test"}, **fields)
    return AnthropicAdapter(config, http)


def encode(request: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...], str | None]:
    body, drops, forced = encode_request({"model": "m", **request}, "claude-x", stream=False)
    return body, drops.dropped, forced


# --------------------------------------------------------------------------- request translation


def test_system_and_developer_messages_merge_into_system_blocks_in_order() -> None:
    body, dropped, _ = encode({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units.",
                                           "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Late rule."},
    ]})
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use metric units.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Late rule."},
    ]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert body["max_tokens"] == 4096 and body["model"] == "claude-x" and dropped == ()


def test_multipart_content_images_and_pdf() -> None:
    body, _, _ = encode({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"}},
    ]}]})
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
         "title": "a.pdf"},
    ]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}),
    ("none", {"type": "none"}),
    ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
])
def test_tool_definitions_and_choice(choice: Any, expected: dict[str, Any]) -> None:
    body, _, _ = encode({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER], "tool_choice": choice})
    assert body["tools"] == [{"name": "get_weather", "description": "Weather for a place",
                              "input_schema": WEATHER["function"]["parameters"]}]
    assert body["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    body, _, _ = encode({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER],
                         "parallel_tool_calls": False})
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_history_with_thinking_parallel_calls_and_merged_tool_results() -> None:
    body, _, _ = encode({"messages": [
        {"role": "user", "content": "Weather in SF and Paris?"},
        {"role": "assistant", "content": "Checking.", "reasoning_content": "two calls",
         "thinking_blocks": [{"type": "thinking", "thinking": "two calls", "signature": "sig1"},
                             {"type": "redacted_thinking", "data": "opaque"}],
         "tool_calls": [
             {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"SF"}'}},
             {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}},
         ]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
        {"role": "user", "content": "And tomorrow?"},
    ]})
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in SF and Paris?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "two calls", "signature": "sig1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "SF"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Paris"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
            {"type": "text", "text": "And tomorrow?"},
        ]},
    ]


def test_sampling_stop_and_limits() -> None:
    body, dropped, _ = encode({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 300,
                               "temperature": 0.3, "top_p": 0.9, "top_k": 40, "stop": "END", "seed": 7,
                               "user": "u-1", "frequency_penalty": 0.5})
    assert body["max_tokens"] == 300 and body["temperature"] == 0.3 and body["top_p"] == 0.9 and body["top_k"] == 40
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u-1"}
    assert set(dropped) == {"seed", "frequency_penalty"}


def test_require_parameters_refuses_what_cannot_be_honoured() -> None:
    with pytest.raises(InvalidRequest) as info:
        encode({"messages": [{"role": "user", "content": "x"}], "seed": 7, "provider": {"require_parameters": True}})
    assert info.value.status == 400 and info.value.param == "seed"


def test_reasoning_effort_becomes_a_thinking_budget_and_drops_sampling() -> None:
    body, dropped, _ = encode({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "medium",
                               "temperature": 0.2})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] > 4096 and "temperature" not in body and dropped == ("temperature",)
    body, _, _ = encode({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high",
                         "max_tokens": 3000})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2999} and body["max_tokens"] == 3000


def test_json_schema_becomes_a_forced_tool_or_output_config_with_thinking() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    body, _, forced = encode({"messages": [{"role": "user", "content": "x"}], "response_format": fmt})
    assert forced == "place" and body["tool_choice"] == {"type": "tool", "name": "place"}
    assert body["tools"][-1]["input_schema"] == schema
    body, _, forced = encode({"messages": [{"role": "user", "content": "x"}], "response_format": fmt,
                              "reasoning_effort": "low"})
    assert forced is None and body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_cache_control_on_tools_passes_through() -> None:
    tool = {**WEATHER, "cache_control": {"type": "ephemeral"}}
    body, _, _ = encode({"messages": [{"role": "user", "content": "x"}], "tools": [tool]})
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}


EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def _call(call_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}, **extra}


def test_cache_control_on_a_tool_call_marks_its_tool_use_block() -> None:
    body, _, _ = encode({"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [_call("toolu_1"), _call("toolu_2", cache_control=EPHEMERAL)]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "21C"},
    ]})
    uses = body["messages"][1]["content"]
    assert [u.get("cache_control") for u in uses] == [None, EPHEMERAL]
    assert [u["id"] for u in uses] == ["toolu_1", "toolu_2"]


def test_a_tool_messages_marker_goes_on_its_tool_result_block() -> None:
    body, _, _ = encode({"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [_call("toolu_1"), _call("toolu_2"), _call("toolu_3")]},
        # Message-level, string content.
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C", "cache_control": EPHEMERAL},
        # On the last part (what the Messages codec makes of a marked tool_result).
        {"role": "tool", "tool_call_id": "toolu_2",
         "content": [{"type": "text", "text": "21C"}, {"type": "text", "text": "sunny", "cache_control": HOUR}]},
        # Message-level, part content.
        {"role": "tool", "tool_call_id": "toolu_3", "content": [{"type": "text", "text": "9C"}],
         "cache_control": EPHEMERAL},
    ]})
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "cache_control": EPHEMERAL},
        {"type": "tool_result", "tool_use_id": "toolu_2",
         "content": [{"type": "text", "text": "21C"}, {"type": "text", "text": "sunny"}], "cache_control": HOUR},
        {"type": "tool_result", "tool_use_id": "toolu_3", "content": [{"type": "text", "text": "9C"}],
         "cache_control": EPHEMERAL},
    ]


def test_a_failed_tool_result_keeps_is_error() -> None:
    body, _, _ = encode({"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [_call("toolu_1"), _call("toolu_2")]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "timeout", "is_error": True},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "18C", "is_error": False},
    ]})
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "timeout", "is_error": True},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "18C"},
    ]


def test_message_level_cache_control_marks_the_messages_last_block() -> None:
    body, _, _ = encode({"messages": [
        {"role": "system", "content": "Long rules.", "cache_control": EPHEMERAL},
        {"role": "user", "content": "Read this.", "cache_control": HOUR},
        {"role": "assistant", "content": "Done.", "cache_control": EPHEMERAL},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
         "cache_control": EPHEMERAL},
        {"role": "assistant", "content": "Checking.", "tool_calls": [_call("toolu_1")], "cache_control": HOUR},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        # A part's own marker is kept; the message-level one does not replace it.
        {"role": "user", "content": [{"type": "text", "text": "c", "cache_control": HOUR}],
         "cache_control": EPHEMERAL},
    ]})
    assert body["system"] == [{"type": "text", "text": "Long rules.", "cache_control": EPHEMERAL}]
    user, assistant, user2, assistant2, results = body["messages"]
    assert user["content"] == [{"type": "text", "text": "Read this.", "cache_control": HOUR}]
    assert assistant["content"] == [{"type": "text", "text": "Done.", "cache_control": EPHEMERAL}]
    assert user2["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": EPHEMERAL}]
    assert assistant2["content"][0] == {"type": "text", "text": "Checking."}
    assert assistant2["content"][1]["type"] == "tool_use" and assistant2["content"][1]["cache_control"] == HOUR
    assert results["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}
    assert results["content"][1] == {"type": "text", "text": "c", "cache_control": HOUR}


# --------------------------------------------------------------------------- answers over a socket


async def test_complete_sends_documented_headers_and_decodes_everything(vendor: ScriptedVendor,
                                                                        http: HttpTransport) -> None:
    vendor.reply(200, (FIXTURES / "anthropic_message_tools.json").read_bytes())
    out = await adapter(vendor, http).complete({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                                "seed": 1}, "claude-sonnet-4-5")
    sent = vendor.last
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json()["model"] == "claude-sonnet-4-5" and "stream" not in sent.json()
    assert out.dropped == ("seed",)
    choice = out.data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "I'll check both."
    assert message["reasoning_content"] == "Two cities, two calls."
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Two cities, two calls.", "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
    ]
    assert [(c["id"], orjson.loads(c["function"]["arguments"])) for c in message["tool_calls"]] == [
        ("toolu_01A09q90qw90lq917835lq9", {"location": "San Francisco, CA", "unit": "celsius"}),
        ("toolu_01B19q90qw90lq917835lq0", {"location": "Paris"}),
    ]
    usage = out.data["usage"]
    assert usage["prompt_tokens"] == 2095 + 1200 + 300
    assert usage["prompt_tokens_details"]["cached_tokens"] == 300
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == 1200
    assert usage["completion_tokens"] == 503 and usage["total_tokens"] == 2095 + 1200 + 300 + 503


async def test_anthropic_beta_and_version_from_config(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, (FIXTURES / "anthropic_message_tools.json").read_bytes())
    a = adapter(vendor, http, headers={"anthropic-beta": "context-1m-2025-08-07"},
                settings=AnthropicSettings("2023-01-01"))
    await a.complete({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "claude")
    assert vendor.last.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert vendor.last.headers["anthropic-version"] == "2023-01-01"


@pytest.mark.parametrize("size", [7, 64, 100_000])
async def test_stream_reassembles_thinking_text_and_parallel_tools(vendor: ScriptedVendor, http: HttpTransport,
                                                                   size: int) -> None:
    data = (FIXTURES / "anthropic_stream_thinking_tools.sse").read_bytes()
    vendor.reply(200, chunks=split_every(data, size))
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                                                "claude")
    assert vendor.last.json()["stream"] is True and vendor.last.headers["accept"] == "text/event-stream"
    out = reassemble(await collect(source))
    assert not source.truncated and out["role"] == "assistant" and out["ids"] == {"msg_014p7gG3wDgGV9EUtLvnow3U"}
    message = out["message"]
    assert message["content"] == "Okay, let's check the weather."
    assert message["reasoning_content"] == "The user wants weather for two cities."
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "The user wants weather for two cities.",
                                           "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}]
    assert [(c["id"], orjson.loads(c["function"]["arguments"])) for c in message["tool_calls"]] == [
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", {"location": "San Francisco, CA"}),
        ("toolu_01Xc9ZfPz8LbBN6Ar3kd2wEK", {"location": "Paris"}),
    ]
    assert out["finish_reason"] == "tool_calls"
    assert out["usage"]["prompt_tokens"] == 472 + 100 + 2000 and out["usage"]["completion_tokens"] == 89
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 2000, "audio_tokens": 0,
                                                     "cache_write_tokens": 100}


def _events(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


START = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                                              "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 10, "output_tokens": 1}}}
TEXT_START = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def _text(t: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}


async def test_mid_stream_error_event_raises_a_gateway_error(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, chunks=[_events(START, TEXT_START, _text("Hel")),
                              _events({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})])
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "c")
    first = await source.next_batch()
    assert first
    with pytest.raises(UpstreamError) as info:
        while await source.next_batch() is not None:
            pass
    assert info.value.status == 502 and "Overloaded" in info.value.message
    source.close()


async def test_stream_without_a_finish_is_truncated(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, chunks=[_events(START, TEXT_START, _text("Hel"))])
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "c")
    out = reassemble(await collect(source))
    assert source.truncated and out["finish_reason"] is None and out["message"]["content"] == "Hel"


async def test_stream_missing_only_message_stop_still_finishes(vendor: ScriptedVendor, http: HttpTransport) -> None:
    delta = {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 3}}
    vendor.reply(200, chunks=[_events(START, TEXT_START, _text("Hel"), delta)])
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "c")
    out = reassemble(await collect(source))
    assert not source.truncated and out["finish_reason"] == "length" and out["usage"]["completion_tokens"] == 3


async def test_forced_json_tool_streams_as_content(vendor: ScriptedVendor, http: HttpTransport) -> None:
    tool = {"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_9", "name": "place", "input": {}}}
    part = {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}}
    part2 = {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'}}
    end = {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}
    vendor.reply(200, chunks=[_events(START, tool, part, part2, {"type": "content_block_stop", "index": 0}, end,
                                      {"type": "message_stop"})])
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": {"type": "object"}}}}
    source = await adapter(vendor, http).stream(request, "c")
    out = reassemble(await collect(source))
    assert out["message"]["content"] == '{"city":"Oslo"}' and out["message"]["tool_calls"] == []
    assert out["finish_reason"] == "stop"
    assert vendor.last.json()["tool_choice"] == {"type": "tool", "name": "place"}


@pytest.mark.parametrize(("status", "headers", "kind", "expect_status"), [
    (401, {}, UpstreamError, 502),
    (429, {"retry-after": "7"}, RateLimited, 429),
    (529, {}, UpstreamError, 502),
    (500, {}, UpstreamError, 502),
    (400, {}, GatewayError, 400),
])
async def test_http_errors_are_mapped(vendor: ScriptedVendor, http: HttpTransport, status: int,
                                      headers: dict[str, str], kind: type[GatewayError], expect_status: int) -> None:
    body = {"type": "error", "error": {"type": "x_error", "message": "nope"}}
    for streaming in (False, True):
        vendor.reply(status, body, headers={"content-type": "application/json", **headers})
        a = adapter(vendor, http)
        request = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        with pytest.raises(kind) as info:
            if streaming:
                await a.stream(request, "c")
            else:
                await a.complete(request, "c")
        assert info.value.status == expect_status
        if status == 401:
            assert info.value.code == "upstream_auth_error"
        if status == 429:
            assert info.value.headers == {"retry-after": "7"}


# --------------------------------------------------------------------------- round-trip properties

_text_st = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_args_st = st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(st.integers(-(2**53), 2**53), _text_st, st.booleans()),
                           max_size=3)


@st.composite
def canonical_answers(draw: st.DrawFn) -> dict[str, Any]:
    calls = draw(st.lists(st.tuples(st.text(alphabet="abcdef0123456789", min_size=4, max_size=12),
                                    st.sampled_from(["get_weather", "lookup", "search"]), _args_st), max_size=3,
                          unique_by=lambda c: c[0]))
    thinking = draw(st.lists(st.tuples(_text_st, st.text(alphabet="abcXYZ019+/=", min_size=1, max_size=20)),
                             max_size=2))
    return {"text": draw(_text_st), "thinking": thinking, "calls": calls,
            "stop": draw(st.sampled_from(["end_turn", "max_tokens", "stop_sequence"]))}


def _render(answer: dict[str, Any]) -> dict[str, Any]:
    """A canonical answer as the Messages response the vendor would send (test-side renderer)."""
    content: list[dict[str, Any]] = [{"type": "thinking", "thinking": t, "signature": s} for t, s in answer["thinking"]]
    content.append({"type": "text", "text": answer["text"]})
    content += [{"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": a} for i, n, a in answer["calls"]]
    return {"id": "msg_x", "type": "message", "role": "assistant", "model": "claude", "content": content,
            "stop_reason": "tool_use" if answer["calls"] else answer["stop"],
            "usage": {"input_tokens": 5, "output_tokens": 7}}


@settings(max_examples=60, deadline=None)
@given(canonical_answers())
def test_property_answers_round_trip(answer: dict[str, Any]) -> None:
    message = decode_message(_render(answer), None)["choices"][0]["message"]
    # ... and the decoded message sent back as history yields the same vendor blocks again.
    body, _, _ = encode({"messages": [{"role": "user", "content": "q"}, message]})
    sent = body["messages"][1]["content"] if len(body["messages"]) > 1 else []
    rendered = [b for b in _render(answer)["content"] if not (b["type"] == "text" and not b["text"])]
    assert sent == rendered


@settings(max_examples=40, deadline=None)
@given(canonical_answers(), st.integers(min_value=1, max_value=50))
async def test_property_streams_equal_whole_answers(answer: dict[str, Any], size: int) -> None:
    whole = decode_message(_render(answer), None)["choices"][0]
    source = AnthropicStream(MemoryResponse(split_every(render_stream(_render(answer)), size)), (), "Anthropic", None)
    out = reassemble(await collect(source))
    expected = whole["message"]
    assert out["message"]["content"] == (expected["content"] or "")
    assert out["message"]["reasoning_content"] == (expected.get("reasoning_content") or "")
    assert out["message"]["thinking_blocks"] == expected.get("thinking_blocks", [])
    assert out["message"]["tool_calls"] == expected.get("tool_calls", [])
    assert out["finish_reason"] == whole["finish_reason"]
