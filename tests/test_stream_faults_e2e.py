"""End to end: broken vendor streams, vendor costs and missing usage, as the official SDKs see them.

One gateway fronts the simulator (fault injection by header: ``malformed_sse``
fuses two events, ``malformed_json`` cuts one) and :class:`ThirdPartyVendor`, an
OpenAI-compatible server like the ones people run themselves: it reports its
own ``usage.cost`` on routes interlock cannot price, sends no usage at all on
another, and cuts streams mid-answer. Every request is checked in the request
log as well as in what the client received.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.mock_openai import MockVendor

pytestmark = pytest.mark.slow

SIM = "openai/gpt-4.1-mini"
VENDOR_COST = 0.0123
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "cost": VENDOR_COST,
         "cost_details": {"upstream_inference_cost": VENDOR_COST}, "is_byok": False}


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-3p", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class ThirdPartyVendor(MockVendor):
    """``costly``: usage with the vendor's own cost; ``silent``: no usage; ``cut-text`` / ``cut-tool``: the
    stream stops mid-answer (``cut-text-spaced``: its last chunk says ``"finish_reason": null`` with a space);
    ``fused``: two events without the blank line between them; ``error-mid``: an error object mid-stream,
    then the connection closes without [DONE]."""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body, "path": request.path_qs})
        model = body["model"]
        if not body.get("stream"):
            message = {"role": "assistant", "content": "Hello from a third party."}
            answer: dict[str, Any] = {"id": "chatcmpl-3p", "object": "chat.completion", "created": 1_700_000_000,
                                      "model": model, "choices": [{"index": 0, "message": message,
                                                                   "finish_reason": "stop"}]}
            if model != "silent":
                answer["usage"] = USAGE
            return web.json_response(answer)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        # Compact JSON as OpenAI writes it; ``-spaced`` models write ``"finish_reason": null`` as json.dumps does.
        separators = (", ", ": ") if model.endswith("-spaced") else (",", ":")

        async def send(obj: Any, end: bytes = b"\n\n") -> None:
            data = obj if isinstance(obj, bytes) else json.dumps(obj, separators=separators).encode()
            await resp.write(b"data: " + data + end)

        await send(_chunk(model, {"role": "assistant", "content": ""}))
        if model == "cut-tool":
            await send(_chunk(model, {"content": "Let me look."}))
            await send(_chunk(model, {"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                                                      "function": {"name": "weather", "arguments": ""}}]}))
            await send(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}))
            return resp  # the connection closes mid-arguments
        await send(_chunk(model, {"content": "Hello"}))
        if model == "fused":
            await send(_chunk(model, {"content": " lost"}), end=b"\n")
        await send(_chunk(model, {"content": " wor"}))
        if model.startswith("cut-text"):
            return resp
        if model == "error-mid":
            # OpenAI's mid-stream failure: an error object as a data event, then the connection closes.
            await send({"error": {"message": "The server had an error while processing your request.",
                                  "type": "server_error", "param": None, "code": None}})
            return resp
        await send(_chunk(model, {"content": "ld."}))
        await send(_chunk(model, {}, "stop"))
        if model != "silent":
            final = _chunk(model, {})
            final["choices"] = []
            final["usage"] = USAGE
            await send(final)
        await send(b"[DONE]")
        await resp.write_eof()
        return resp


@pytest.fixture(scope="module")
def third_party() -> Iterator[ThirdPartyVendor]:
    vendor = ThirdPartyVendor().start()
    yield vendor
    vendor.stop()


@pytest.fixture(scope="module")
def gw(third_party: ThirdPartyVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    config = f"""
vendors:
  third:
    type: openai
    base_url: {third_party.base_url}
    api_key: sk-third
catalog:
  models:
    lab/silent:
      name: A priced model whose vendor reports no usage
      context_window: 32768
      capabilities: [streaming, tools]
      routes:
        third: {{vendor_model_id: silent, price: {{input: 1.0, output: 2.0}}}}
simulator:
  enabled: true
  time_scale: 0
  allow_fault_headers: true
"""
    gateway = start_gateway(Path(tmp_path_factory.mktemp("stream-faults")), config)
    yield gateway
    gateway.stop()


@pytest.fixture
def oai(gw: GatewayProcess) -> openai.OpenAI:
    return gw.openai_client()


@pytest.fixture
def ant(gw: GatewayProcess) -> anthropic.Anthropic:
    return gw.anthropic_client()



def fault(spec: str) -> dict[str, str]:
    return {"x-interlock-simulator-fault": spec}


USER = [{"role": "user", "content": "Tell me a long story about gateways."}]


# -------------------------------------------------------------- malformed vendor streams


@pytest.mark.parametrize("spec", ["malformed_sse", "malformed_json"])
def test_chat_stream_with_a_broken_event_ends_with_an_error_event(oai: openai.OpenAI, gw: GatewayProcess,
                                                                  spec: str) -> None:
    raw = oai.chat.completions.with_raw_response.create(model=SIM, messages=USER, max_tokens=40, stream=True,
                                                        extra_headers=fault(spec))
    text = []
    with pytest.raises(openai.APIError) as info:
        for chunk in raw.parse():
            text.extend(c.delta.content or "" for c in chunk.choices)
    assert not isinstance(info.value, openai.APIConnectionError)
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_stream_malformed"
    assert "".join(text)  # the text before the broken event arrived
    rec = gw.record(raw.headers["x-interlock-request-id"])
    assert rec["status"] == 502 and rec["error_type"] == "upstream_stream_malformed"


def test_chat_stream_vendor_error_event_is_a_logged_failure(oai: openai.OpenAI, gw: GatewayProcess) -> None:
    raw = oai.chat.completions.with_raw_response.create(model=SIM, messages=USER, max_tokens=40, stream=True,
                                                        extra_headers=fault("error_event=529"))
    with pytest.raises(openai.APIError) as info:
        list(raw.parse())
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_stream_error"
    rec = gw.record(raw.headers["x-interlock-request-id"])
    assert rec["status"] == 502 and rec["error_type"] == "upstream_stream_error"


def test_fused_events_never_lose_a_token_silently(oai: openai.OpenAI, gw: GatewayProcess) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="third/fused", messages=USER, stream=True)
    text = []
    with pytest.raises(openai.APIError):
        for chunk in raw.parse():
            text.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(text) == "Hello"
    assert gw.record(raw.headers["x-interlock-request-id"])["error_type"] == "upstream_stream_malformed"


def test_messages_stream_with_a_broken_event_ends_with_an_error_event(ant: anthropic.Anthropic,
                                                                      gw: GatewayProcess) -> None:
    raw = ant.messages.with_raw_response.create(model=SIM, max_tokens=40, messages=USER, stream=True,  # type: ignore[arg-type]
                                                extra_headers=fault("malformed_sse"))
    names = []
    with pytest.raises(anthropic.APIStatusError) as info:
        for event in raw.parse():
            names.append(event.type)
    assert "content_block_delta" in names and "message_stop" not in names
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == "api_error"
    rec = gw.record(raw.headers["x-interlock-request-id"])
    assert rec["status"] == 502 and rec["error_type"] == "upstream_stream_malformed"


def test_responses_stream_with_a_broken_event_fails_the_response(oai: openai.OpenAI, gw: GatewayProcess) -> None:
    raw = oai.responses.with_raw_response.create(model=SIM, input="Tell me a long story.", max_output_tokens=40,
                                                 stream=True, extra_headers=fault("malformed_json"))
    events = list(raw.parse())
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    assert events[-2].code == "upstream_stream_malformed"  # type: ignore[union-attr]
    rec = gw.record(raw.headers["x-interlock-request-id"])
    assert rec["status"] == 502 and rec["error_type"] == "upstream_stream_malformed"


# -------------------------------------------------------------- usage.cost is interlock's, never the vendor's


def test_vendor_cost_never_reaches_the_chat_client(oai: openai.OpenAI) -> None:
    answer = oai.chat.completions.create(model="third/costly", messages=USER)
    assert answer.usage is not None and "cost" not in (answer.usage.model_extra or {})
    chunks = list(oai.chat.completions.create(model="third/costly", messages=USER, stream=True,
                                              stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].total_tokens == 17
    assert "cost" not in (usage[0].model_extra or {})


def test_vendor_cost_never_reaches_the_messages_client(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="third/costly", max_tokens=64, messages=USER)  # type: ignore[arg-type]
    assert "cost" not in (message.usage.model_extra or {})
    deltas = [e for e in ant.messages.create(model="third/costly", max_tokens=64, messages=USER,  # type: ignore[arg-type]
                                             stream=True) if e.type == "message_delta"]
    assert len(deltas) == 1 and deltas[0].usage.output_tokens == 5
    assert "cost" not in (deltas[0].usage.model_extra or {})


def test_vendor_cost_never_reaches_the_responses_client(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="third/costly", input="hi", store=False)
    assert response.usage is not None and "cost" not in (response.usage.model_extra or {})
    events = list(oai.responses.create(model="third/costly", input="hi", store=False, stream=True))
    done = events[-1]
    assert done.type == "response.completed" and done.response.usage is not None
    assert done.response.usage.total_tokens == 17 and "cost" not in (done.response.usage.model_extra or {})


# -------------------------------------------------------------- no usage from the vendor: the estimate, marked


def test_chat_stream_without_vendor_usage_sends_the_estimate(oai: openai.OpenAI, gw: GatewayProcess) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="lab/silent", messages=USER, stream=True,
                                                        stream_options={"include_usage": True})
    usage = [c.usage for c in raw.parse() if c.usage is not None]
    assert len(usage) == 1
    extra = usage[0].model_extra or {}
    assert extra["estimated"] is True
    rec = gw.record(raw.headers["x-interlock-request-id"])
    assert rec["cost_estimated"] == 1
    assert (usage[0].prompt_tokens, usage[0].completion_tokens) == (rec["input_tokens"], rec["output_tokens"])
    assert round(extra["cost"] * 1e12) == rec["cost_picousd"] > 0


def test_messages_stream_without_vendor_usage_sends_the_estimate(ant: anthropic.Anthropic, gw: GatewayProcess) -> None:
    raw = ant.messages.with_raw_response.create(model="lab/silent", max_tokens=64, messages=USER,  # type: ignore[arg-type]
                                                stream=True)
    deltas = [e for e in raw.parse() if e.type == "message_delta"]
    usage = deltas[0].usage
    rec = gw.record(raw.headers["x-interlock-request-id"])
    assert (usage.input_tokens, usage.output_tokens) == (rec["input_tokens"], rec["output_tokens"])
    assert usage.output_tokens > 0
    extra = usage.model_extra or {}
    assert extra["estimated"] is True and round(extra["cost"] * 1e12) == rec["cost_picousd"] > 0


def test_responses_stream_without_vendor_usage_sends_the_estimate(oai: openai.OpenAI, gw: GatewayProcess) -> None:
    raw = oai.responses.with_raw_response.create(model="lab/silent", input="hi", store=False, stream=True)
    done = list(raw.parse())[-1]
    assert done.type == "response.completed"
    usage = done.response.usage
    assert usage is not None
    rec = gw.record(raw.headers["x-interlock-request-id"])
    assert (usage.input_tokens, usage.output_tokens) == (rec["input_tokens"], rec["output_tokens"])
    extra = usage.model_extra or {}
    assert extra["estimated"] is True and round(extra["cost"] * 1e12) == rec["cost_picousd"] > 0


def test_answers_without_vendor_usage_carry_the_estimate(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    chat = oai.chat.completions.create(model="lab/silent", messages=USER)
    assert chat.usage is not None and chat.usage.completion_tokens > 0
    assert (chat.usage.model_extra or {})["estimated"] is True and (chat.usage.model_extra or {})["cost"] > 0
    message = ant.messages.create(model="lab/silent", max_tokens=64, messages=USER)  # type: ignore[arg-type]
    assert message.usage.output_tokens == chat.usage.completion_tokens
    assert (message.usage.model_extra or {})["estimated"] is True
    response = oai.responses.create(model="lab/silent", input="hi", store=False)
    assert response.usage is not None and (response.usage.model_extra or {})["estimated"] is True


# -------------------------------------------------------------- a cut Responses stream keeps what was sent


@pytest.mark.parametrize("model", ["third/cut-text", "third/cut-text-spaced"])
def test_cut_responses_stream_keeps_the_streamed_text(oai: openai.OpenAI, model: str) -> None:
    events = list(oai.responses.create(model=model, input="hi", store=False, stream=True))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == "Hello wor"
    failed = events[-1]
    assert failed.type == "response.failed"
    message = failed.response.output[0]
    assert message.type == "message" and message.status == "incomplete"
    assert [(p.type, getattr(p, "text", None)) for p in message.content] == [("output_text", "Hello wor")]


def test_cut_responses_stream_keeps_the_streamed_arguments(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="third/cut-tool", input="Weather?", store=False, stream=True,
                                       tools=[{"type": "function", "name": "weather", "parameters": {
                                           "type": "object", "properties": {"city": {"type": "string"}}}}]))
    failed = events[-1]
    assert failed.type == "response.failed"
    message, call = failed.response.output
    assert message.type == "message" and message.content[0].text == "Let me look."  # type: ignore[union-attr]
    assert call.type == "function_call" and call.status == "incomplete"
    assert (call.name, call.call_id, call.arguments) == ("weather", "call_9", '{"city": "Pa')


def test_chat_stream_cut_after_a_spaced_unfinished_chunk_is_reported_truncated(oai: openai.OpenAI,
                                                                                 gw: GatewayProcess) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="third/cut-text-spaced", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as info:
        list(raw.parse())
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_stream_truncated"
    assert gw.record(raw.headers["x-interlock-request-id"])["error_type"] == "upstream_stream_truncated"


# -------------------------------------------------------------- a vendor error mid-stream is reported once


def _raw_sse(gw: GatewayProcess, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[str, list[Any]]:
    """POST a streamed request; the request id and every SSE event as (event name, parsed data)."""
    request = urllib.request.Request(gw.url + path, data=json.dumps(body).encode(), method="POST", headers={
        "authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=20) as resp:
        assert resp.status == 200
        text = resp.read().decode()
        rid = resp.headers["x-interlock-request-id"]
    events = []
    for block in text.split("\n\n"):
        name = None
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
                events.append((name, data if data == "[DONE]" else json.loads(data)))
    return rid, events


def test_chat_vendor_error_event_is_one_error_in_raw_sse(gw: GatewayProcess) -> None:
    rid, events = _raw_sse(gw, "/v1/chat/completions", {"model": SIM, "messages": USER, "max_tokens": 40,
                                                        "stream": True}, fault("error_event=529"))
    errors = [data for _, data in events if isinstance(data, dict) and "error" in data]
    assert len(errors) == 1, events
    assert errors[0]["error"]["code"] == "upstream_stream_error"
    assert events[-1][1] is errors[0]  # nothing after it, not even [DONE]
    assert gw.record(rid)["error_type"] == "upstream_stream_error"


def test_responses_vendor_error_event_is_one_error_then_one_failed(gw: GatewayProcess) -> None:
    rid, events = _raw_sse(gw, "/v1/responses", {"model": SIM, "input": "Tell me a long story.",
                                                 "max_output_tokens": 40, "stream": True}, fault("error_event=529"))
    kinds = [data["type"] for _, data in events]
    assert kinds.count("error") == 1 and kinds.count("response.failed") == 1, kinds
    assert kinds[-2:] == ["error", "response.failed"]
    assert events[-2][1]["code"] == "upstream_stream_error"
    assert gw.record(rid)["error_type"] == "upstream_stream_error"


def test_third_party_error_object_then_close_is_one_error(gw: GatewayProcess) -> None:
    rid, events = _raw_sse(gw, "/v1/chat/completions", {"model": "third/error-mid", "messages": USER,
                                                        "stream": True}, {})
    errors = [data for _, data in events if isinstance(data, dict) and "error" in data]
    assert len(errors) == 1 and events[-1][1] is errors[0], events
    assert errors[0]["error"]["code"] == "upstream_stream_error"
    assert "The server had an error" in errors[0]["error"]["message"]
    rid2, events2 = _raw_sse(gw, "/v1/responses", {"model": "third/error-mid", "input": "hi", "stream": True}, {})
    kinds = [data["type"] for _, data in events2]
    assert kinds.count("error") == 1 and kinds[-2:] == ["error", "response.failed"], kinds
    for request_id in (rid, rid2):
        rec = gw.record(request_id)
        assert rec["status"] == 502 and rec["error_type"] == "upstream_stream_error"


def test_responses_vendor_error_event_through_the_sdk(oai: openai.OpenAI, gw: GatewayProcess) -> None:
    raw = oai.responses.with_raw_response.create(model=SIM, input="Tell me a long story.", max_output_tokens=40,
                                                 stream=True, extra_headers=fault("error_event=529"))
    kinds = [e.type for e in raw.parse()]
    assert kinds.count("error") == 1 and kinds[-2:] == ["error", "response.failed"]
    rec = gw.record(raw.headers["x-interlock-request-id"])
    assert rec["status"] == 502 and rec["error_type"] == "upstream_stream_error"


def test_messages_vendor_error_event_is_one_error_event(gw: GatewayProcess) -> None:
    rid, events = _raw_sse(gw, "/v1/messages", {"model": SIM, "max_tokens": 40, "messages": USER, "stream": True},
                           fault("error_event=529"))
    names = [name for name, _ in events]
    assert names.count("error") == 1 and names[-1] == "error" and "message_stop" not in names, names
    assert gw.record(rid)["error_type"] == "upstream_stream_error"


def test_required_nullable_fields_a_vendor_leaves_out_are_filled(oai: openai.OpenAI) -> None:
    # ThirdPartyVendor's answer has no message.refusal and no choice logprobs, as vLLM and others send.
    body: dict[str, Any] = oai.chat.completions.with_raw_response.create(model="third/costly",
                                                                         messages=USER).http_response.json()
    choice = body["choices"][0]
    assert choice["logprobs"] is None and choice["message"]["refusal"] is None
    assert choice["message"]["content"] == "Hello from a third party."
