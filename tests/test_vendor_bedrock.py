"""Bedrock Converse adapter: translation, SigV4-verified requests over a socket, event-stream answers, exceptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.core.errors import InvalidRequest, RateLimited, UpstreamError
from interlock.vendors.bedrock.chat import BedrockAdapter, encode_request
from interlock.vendors.bedrock.sigv4 import Credentials, signature
from interlock.vendors.translate_common import Drops
from interlock.vendors.transport import HttpTransport
from tests.mock_vendors.canonical import collect, reassemble, vendor_config
from tests.mock_vendors.eventstream import encode_message
from tests.mock_vendors.server import Received, Reply, ScriptedVendor, split_every

FIXTURES = Path(__file__).parent / "mock_vendors" / "fixtures"
ENV = {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret/TEST+key", "AWS_SESSION_TOKEN": "tok",
       "AWS_REGION": "eu-west-1"}
CLAUDE = "anthropic.claude-3-7-sonnet-20250219-v1:0"
ES = "application/vnd.amazon.eventstream"


def adapter(vendor: ScriptedVendor, http: HttpTransport) -> BedrockAdapter:
    return BedrockAdapter(vendor_config("bedrock", vendor.url, ENV), http)


def verified(reply: Reply) -> Any:
    """A mock handler that recomputes the SigV4 signature from what arrived, as AWS does."""

    def handle(req: Received) -> Reply:
        auth = req.headers["authorization"]
        names = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        scope = auth.split("Credential=")[1].split(",")[0].split("/")
        expected, _ = signature(Credentials("AKIDTEST", "secret/TEST+key"), req.method, req.raw_path, req.query,
                                {n: req.headers[n] for n in names}, req.headers["x-amz-content-sha256"],
                                req.headers["x-amz-date"], scope[2], scope[3])
        if auth.split("Signature=")[1] != expected or scope[2] != "eu-west-1" or scope[3] != "bedrock":
            return Reply(403, b'{"message":"The request signature we calculated does not match"}')
        return reply

    return handle


def encode(request: dict[str, Any], model: str = CLAUDE) -> tuple[dict[str, Any], str | None, tuple[str, ...]]:
    drops = Drops(request, "Bedrock")
    body, forced = encode_request({"model": "m", **request}, model, drops)
    return body, forced, drops.dropped


def test_translation_system_cache_points_tools_results_and_thinking() -> None:
    body, forced, dropped = encode({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Rules", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "text", "text": "Look"},
                                     {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,AAA"}},
                                     {"type": "file", "file": {"file_data": "data:application/pdf;base64,JV",
                                                               "filename": "q3 report.v2.pdf"}}]},
        {"role": "assistant", "content": "", "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}],
         "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                        {"id": "t2", "type": "function", "function": {"name": "f", "arguments": '{"a":2}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "one"},
        {"role": "tool", "tool_call_id": "t2", "content": "two"},
    ], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}},
                  "cache_control": {"type": "ephemeral"}}], "tool_choice": "required", "max_tokens": 100,
        "temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop": ["X"], "seed": 4})
    assert body["system"] == [{"text": "Rules"}, {"cachePoint": {"type": "default"}}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Look"}, {"image": {"format": "jpeg", "source": {"bytes": "AAA"}}},
                                     {"document": {"format": "pdf", "name": "q3 report v2", "source": {"bytes": "JV"}}}]},
        {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}},
            {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}},
            {"toolUse": {"toolUseId": "t2", "name": "f", "input": {"a": 2}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "one"}]}},
                                     {"toolResult": {"toolUseId": "t2", "content": [{"text": "two"}]}}]},
    ]
    assert body["toolConfig"] == {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}},
                                            {"cachePoint": {"type": "default"}}], "toolChoice": {"any": {}}}
    assert body["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["X"]}
    assert body["additionalModelRequestFields"] == {"top_k": 5}
    assert forced is None and dropped == ("seed",)


def test_json_schema_forces_a_tool_and_non_claude_drops_top_k() -> None:
    body, forced, dropped = encode({"messages": [{"role": "user", "content": "x"}], "top_k": 3,
                                    "response_format": {"type": "json_schema",
                                                        "json_schema": {"name": "out", "schema": {"type": "object"}}}},
                                   model="amazon.nova-pro-v1:0")
    assert forced == "out" and body["toolConfig"]["toolChoice"] == {"tool": {"name": "out"}}
    assert dropped == ("top_k",)
    with pytest.raises(InvalidRequest):
        encode({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]})


async def test_complete_signed_request_and_decoding(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.handle_with(verified(Reply(200, (FIXTURES / "bedrock_converse_tools.json").read_bytes())))
    out = await adapter(vendor, http).complete({"model": "m", "messages": [{"role": "user", "content": "x"}]}, CLAUDE)
    sent = vendor.last
    assert sent.path == f"/model/{CLAUDE}/converse" and sent.headers["x-amz-security-token"] == "tok"
    message = out.data["choices"][0]["message"]
    assert out.data["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] == "Let me check." and message["reasoning_content"] == "Need the weather for two cities."
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "Need the weather for two cities.",
                                           "signature": "ErcBCkgIBRABGAIiQL"}]
    assert [c["id"] for c in message["tool_calls"]] == ["tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "tooluse_9aYtlPxgQ8S7kUJ9j3pA1w"]
    usage = out.data["usage"]
    assert usage["prompt_tokens"] == 375 + 1000 + 500
    assert usage["prompt_tokens_details"]["cached_tokens"] == 1000
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == 500


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return encode_message({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                          orjson.dumps(payload))


STREAM = b"".join([
    _event("messageStart", {"role": "assistant", "p": "abcdefgh"}),
    _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Think"}}}),
    _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "SIGN"}}}),
    _event("contentBlockStop", {"contentBlockIndex": 0}),
    _event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Hello"}}),
    _event("contentBlockStop", {"contentBlockIndex": 1}),
    _event("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tu_1", "name": "f"}}}),
    _event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"a":'}}}),
    # A second call that reuses index 2 (seen from some models): it must still become OpenAI index 1.
    _event("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tu_2", "name": "g"}}}),
    _event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"b":2}'}}}),
    _event("contentBlockStop", {"contentBlockIndex": 2}),
    _event("messageStop", {"stopReason": "tool_use"}),
    _event("metadata", {"usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29}, "metrics": {"latencyMs": 5}}),
])


@pytest.mark.parametrize("size", [3, 50, 100_000])
async def test_stream_event_frames(vendor: ScriptedVendor, http: HttpTransport, size: int) -> None:
    vendor.handle_with(verified(Reply(200, b"", split_every(STREAM, size), {"content-type": ES})))
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, CLAUDE)
    assert vendor.last.path == f"/model/{CLAUDE}/converse-stream"
    out = reassemble(await collect(source))
    message = out["message"]
    assert message["content"] == "Hello" and message["reasoning_content"] == "Think"
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "Think", "signature": "SIGN"}]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]] == [
        ("tu_1", "f", '{"a":'), ("tu_2", "g", '{"b":2}')]
    assert out["finish_reason"] == "tool_calls" and out["usage"]["prompt_tokens"] == 20 and not source.truncated


async def test_stream_exception_event_and_truncation(vendor: ScriptedVendor, http: HttpTransport) -> None:
    throttled = encode_message({":exception-type": "throttlingException", ":content-type": "application/json",
                                ":message-type": "exception"}, b'{"message":"Too many tokens"}')
    head = STREAM.split(_event("contentBlockStop", {"contentBlockIndex": 0}))[0]
    vendor.handle_with(verified(Reply(200, b"", [head, throttled], {"content-type": ES})))
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, CLAUDE)
    with pytest.raises(RateLimited):
        await collect(source)
    cut = STREAM.split(_event("messageStop", {"stopReason": "tool_use"}))[0]
    vendor.handle_with(verified(Reply(200, b"", [cut], {"content-type": ES})))
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, CLAUDE)
    await collect(source)
    assert source.truncated


async def test_bad_signature_is_an_upstream_auth_error(vendor: ScriptedVendor, http: HttpTransport) -> None:
    config = vendor_config("bedrock", vendor.url, {**ENV, "AWS_SECRET_ACCESS_KEY": "wrong"})
    vendor.handle_with(verified(Reply(200, b"{}")))
    with pytest.raises(UpstreamError) as info:
        await BedrockAdapter(config, http).complete({"model": "m", "messages": [{"role": "user", "content": "x"}]},
                                                    CLAUDE)
    assert info.value.code == "upstream_auth_error" and info.value.status == 502


def test_tool_call_message_and_tool_markers_become_cache_points() -> None:
    point = {"cachePoint": {"type": "default"}}
    mark = {"type": "ephemeral"}
    call = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}, "cache_control": mark}
    body, _, _ = encode({"messages": [
        {"role": "system", "content": "Rules", "cache_control": mark},
        {"role": "user", "content": "Go", "cache_control": mark},
        {"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "t2", "cache_control": None}]},
        {"role": "tool", "tool_call_id": "t1", "content": "boom", "is_error": True, "cache_control": mark},
        {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "ok", "cache_control": mark}]},
    ], "max_tokens": 10})
    assert body["system"] == [{"text": "Rules"}, point]
    assert body["messages"][0]["content"] == [{"text": "Go"}, point]
    assert body["messages"][1]["content"] == [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}, point,
                                              {"toolUse": {"toolUseId": "t2", "name": "f", "input": {}}}]
    assert body["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "boom"}], "status": "error"}}, point,
        {"toolResult": {"toolUseId": "t2", "content": [{"text": "ok"}]}}, point]
