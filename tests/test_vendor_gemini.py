"""Gemini adapter: request translation, documented answers and SSE streams over a socket, signatures, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.core.errors import InvalidRequest, RateLimited, UpstreamError
from interlock.vendors.gemini.chat import (
    ConversionMemo,
    GeminiAdapter,
    GeminiStream,
    decode_response,
    encode_request,
    gemini_schema,
)
from interlock.vendors.translate_common import Drops
from interlock.vendors.transport import HttpTransport
from tests.mock_vendors.canonical import collect, reassemble, vendor_config
from tests.mock_vendors.memory import MemoryResponse
from tests.mock_vendors.server import ScriptedVendor, split_every

FIXTURES = Path(__file__).parent / "mock_vendors" / "fixtures"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}


def adapter(vendor: ScriptedVendor, http: HttpTransport) -> GeminiAdapter:
    return GeminiAdapter(vendor_config("google", vendor.url, {"GEMINI_API_KEY": "AIza-test"}), http)


def encode(request: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    drops = Drops({"model": "m", **request}, "Gemini")
    return encode_request({"model": "m", **request}, drops), drops.dropped


def test_messages_system_parts_and_merged_function_responses() -> None:
    body, _ = encode({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Metric units."},
        {"role": "user", "content": [{"type": "text", "text": "Look:"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                     {"type": "image_url", "image_url": {"url": "https://x.test/a.webp"}},
                                     {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
                                     {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Oslo"}'},
             "extra_content": {"google": {"thought_signature": "SIG"}}},
            {"id": "c2", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 3}'},
        {"role": "tool", "tool_call_id": "c2", "content": "not json"},
    ]})
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Metric units."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Look:"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                                   {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/a.webp"}},
                                   {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
                                   {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"location": "Oslo"}}, "thoughtSignature": "SIG"},
            {"functionCall": {"name": "lookup", "args": {}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 3}}},
            {"functionResponse": {"name": "lookup", "response": {"content": "not json"}}}]},
    ]


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_tools_and_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    body, _ = encode({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER], "tool_choice": choice})
    assert body["tools"] == [{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
                                                        "parameters": WEATHER["function"]["parameters"]}]}]
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_converted_tools_and_schemas_are_reused_but_never_confused() -> None:
    search = {"type": "web_search"}
    request = {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER, search]}
    first, dropped = encode(request)
    again, dropped_again = encode(orjson.loads(orjson.dumps(request)))  # equal tools, new objects
    assert again["tools"] == first["tools"] and again["tools"][0]["functionDeclarations"] is \
        first["tools"][0]["functionDeclarations"]
    assert dropped == dropped_again == ("tools",)  # a remembered conversion still reports its drops
    with pytest.raises(InvalidRequest):
        encode({**request, "provider": {"require_parameters": True}})
    other = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"location": {"type": ["string", "null"]}}}}}
    changed, _ = encode({"messages": [{"role": "user", "content": "x"}], "tools": [other]})
    assert changed["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]["location"] == {
        "type": "string", "nullable": True}
    formats = [{"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object", "properties": {
        "n": {"type": kind}}}}} for kind in ("integer", "string")]
    schemas = [encode({"messages": [{"role": "user", "content": "x"}], "response_format": f})[0]
               ["generationConfig"]["responseSchema"]["properties"]["n"]["type"] for f in formats]
    assert schemas == ["integer", "string"]


def test_conversion_memo_is_bounded_by_count_and_bytes() -> None:
    built: list[int] = []

    def build(n: int) -> int:
        built.append(n)
        return n * 10

    memo = ConversionMemo(max_items=3, max_bytes=64)
    assert [memo.get(b"k", n, build) for n in (1, 2, 1)] == [10, 20, 10] and built == [1, 2]
    for n in range(3, 8):
        memo.get(b"k", n, build)
    assert len(memo) == 3 and memo.size == 3 * len(b"k1")
    memo.get(b"k", 1, build)  # evicted (oldest first): built again
    assert built[-1] == 1
    big = "x" * 20  # over an eighth of the byte budget: converted, never kept
    assert memo.get(b"k", big, lambda s: len(s)) == 20 and len(memo) == 3 and memo.size <= 64


def test_generation_config_structured_output_and_thinking() -> None:
    schema = {"type": "object", "additionalProperties": False, "$defs": {"C": {"type": ["string", "null"]}},
              "properties": {"city": {"$ref": "#/$defs/C"}, "kind": {"const": "town"}}, "required": ["city"]}
    body, dropped = encode({"messages": [{"role": "user", "content": "x"}], "max_tokens": 200, "temperature": 0.5,
                            "top_p": 0.8, "top_k": 20, "seed": 3, "stop": ["A", "B"], "n": 2, "user": "u",
                            "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
                            "reasoning_effort": "low", "parallel_tool_calls": False})
    assert body["generationConfig"] == {
        "maxOutputTokens": 200, "temperature": 0.5, "topP": 0.8, "topK": 20, "seed": 3, "candidateCount": 2,
        "stopSequences": ["A", "B"], "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"city": {"type": "string", "nullable": True},
                                                            "kind": {"enum": ["town"]}}, "required": ["city"]},
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
    }
    assert dropped == ("user", "parallel_tool_calls")
    assert gemini_schema({"anyOf": [{"type": "integer"}]}) == {"anyOf": [{"type": "integer"}]}


def test_thinking_blocks_go_back_as_signed_thought_parts() -> None:
    body, _ = encode({"messages": [{"role": "user", "content": "x"}, {
        "role": "assistant", "content": "Hi", "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "S1"}]}]})
    assert body["contents"][1] == {"role": "model", "parts": [{"text": "", "thought": True, "thoughtSignature": "S1"},
                                                              {"text": "Hi"}]}


async def test_complete_over_socket(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, (FIXTURES / "gemini_response_tools.json").read_bytes())
    out = await adapter(vendor, http).complete({"model": "m", "messages": [{"role": "user", "content": "x"}]},
                                               "gemini-2.5-flash")
    sent = vendor.last
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == "AIza-test" and "authorization" not in sent.headers
    choice = out.data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"  # Gemini said STOP
    message = choice["message"]
    assert message["content"] == "I'll look that up." and message["reasoning_content"] == "Checking the weather first."
    calls = message["tool_calls"]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [{"location": "Boston"}, {"location": "Paris"}]
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "EpYCCpMCAdHtim9Sig1"}}
    assert "extra_content" not in calls[1] and calls[0]["id"] != calls[1]["id"]
    usage = out.data["usage"]
    assert usage["prompt_tokens"] == 120 and usage["prompt_tokens_details"]["cached_tokens"] == 100
    assert usage["completion_tokens"] == 80 and usage["completion_tokens_details"]["reasoning_tokens"] == 50


@pytest.mark.parametrize("size", [5, 97, 100_000])
async def test_stream_over_socket(vendor: ScriptedVendor, http: HttpTransport, size: int) -> None:
    vendor.reply(200, chunks=split_every((FIXTURES / "gemini_stream_thoughts_tools.sse").read_bytes(), size))
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]},
                                                "gemini-2.5-flash")
    assert vendor.last.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and vendor.last.query == "alt=sse"
    out = reassemble(await collect(source))
    assert not source.truncated and out["finish_reason"] == "tool_calls"
    message = out["message"]
    assert message["content"] == "Sure - checking both cities."
    assert message["reasoning_content"].startswith("**Evaluating the request**")
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "", "signature": "CiwBVKhc7nTsRmV0aG9kcw=="}]
    assert [c["extra_content"] for c in message["tool_calls"] if "extra_content" in c] == [
        {"google": {"thought_signature": "EpYCCpMCAdHtim9Sig1"}}]
    assert len(message["tool_calls"]) == 2
    assert out["usage"]["prompt_tokens"] == 9 and out["usage"]["completion_tokens"] == 31 + 37


async def test_stream_without_finish_reason_is_truncated() -> None:
    data = (FIXTURES / "gemini_stream_thoughts_tools.sse").read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    source = GeminiStream(MemoryResponse([data]), (), "Gemini")
    await collect(source)
    assert source.truncated


async def test_mid_stream_error_and_http_errors(vendor: ScriptedVendor, http: HttpTransport) -> None:
    first = (FIXTURES / "gemini_stream_thoughts_tools.sse").read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    err = b'data: {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}\r\n\r\n'
    vendor.reply(200, chunks=[first, err])
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "g")
    with pytest.raises(UpstreamError) as info:
        await collect(source)
    assert info.value.status == 502 and "overloaded" in info.value.message
    bad_key = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                         "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}
    vendor.reply(400, bad_key)
    with pytest.raises(UpstreamError) as auth:
        await adapter(vendor, http).complete({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "g")
    assert auth.value.code == "upstream_auth_error"
    vendor.reply(429, {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}},
                 headers={"content-type": "application/json", "retry-after": "3"})
    with pytest.raises(RateLimited):
        await adapter(vendor, http).complete({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "g")


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@st.composite
def responses(draw: st.DrawFn) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if draw(st.booleans()):
        parts.append({"text": draw(_text), "thought": True})
    parts.append({"text": draw(_text)})
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3)):
        part: dict[str, Any] = {"functionCall": {"name": name, "args": {"k": draw(_text)}}}
        if draw(st.booleans()):
            part["thoughtSignature"] = draw(st.text(alphabet="abcXYZ09+/=", min_size=1, max_size=12))
        parts.append(part)
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0,
                            "finishReason": draw(st.sampled_from(["STOP", "MAX_TOKENS"]))}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}, "modelVersion": "g", "responseId": "r"}


@settings(max_examples=60, deadline=None)
@given(responses())
def test_property_model_turn_round_trips(response: dict[str, Any]) -> None:
    """Gemini answer → canonical message → Gemini history: the same parts (signatures included) go back."""
    message = decode_response(response)["choices"][0]["message"]
    body, _ = encode({"messages": [{"role": "user", "content": "q"}, message]})
    parts = response["candidates"][0]["content"]["parts"]
    sent = body["contents"][1]["parts"] if len(body["contents"]) > 1 else []
    expected = [p for p in parts if not p.get("thought") and p.get("text") != ""]
    assert [p for p in sent if not p.get("thought")] == [
        {"text": "".join(p["text"] for p in expected if "text" in p)}] * any("text" in p for p in expected) + [
        p for p in expected if "functionCall" in p]


@settings(max_examples=40, deadline=None)
@given(responses(), st.integers(min_value=1, max_value=40))
async def test_property_stream_equals_whole(response: dict[str, Any], size: int) -> None:
    whole = decode_response(response)["choices"][0]
    wire = b"data: " + orjson.dumps(response) + b"\r\n\r\n"
    out = reassemble(await collect(GeminiStream(MemoryResponse(split_every(wire, size)), (), "Gemini")))
    assert out["message"]["content"] == (whole["message"]["content"] or "")
    assert [(c["function"], c.get("extra_content")) for c in out["message"]["tool_calls"]] == [
        (c["function"], c.get("extra_content")) for c in whole["message"].get("tool_calls", [])]
    assert out["finish_reason"] == whole["finish_reason"]
