"""The simulator's OpenAI chat-completions format through the in-process transport."""

from __future__ import annotations

import base64
import re
from typing import Any

import jsonschema
import orjson
import pytest

from interlock.catalog import count_tokens, estimate_chat_tokens, load_catalog
from interlock.core.vendor import Timeouts
from interlock.simulator import SimulatorSettings, SimulatorTransport

URL = "http://simulator.internal/v1/chat/completions"
MODEL = "openai/gpt-4.1-mini"
SSE_EVENT = re.compile(rb"data: (\{.*?\}|\[DONE\])\n\n", re.S)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "minLength": 3}, "limit": {"type": "integer", "minimum": 1, "maximum": 10}},
            "required": ["query"],
        },
    },
}


def transport(**settings: Any) -> SimulatorTransport:
    return SimulatorTransport(SimulatorSettings(time_scale=0, **settings), clock=lambda: 1_700_000_000.0)


async def call(t: SimulatorTransport, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    response = await t.request("POST", URL, headers or {}, orjson.dumps(body), Timeouts())
    data = b"".join([chunk async for chunk in response.iter_bytes()])
    return response.status, dict(response.headers), data


def request(prompt: str = "Explain how a circuit breaker protects an API", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], **extra}


def events(data: bytes) -> list[Any]:
    """Parse SSE and check the framing covers every byte."""
    found = SSE_EVENT.findall(data)
    assert b"".join(b"data: " + e + b"\n\n" for e in found) == data, "stray bytes outside data: events"
    return [e if e == b"[DONE]" else orjson.loads(e) for e in found]


async def test_plain_completion_shape_and_usage() -> None:
    body = request(max_tokens=200)
    status, headers, data = await call(transport(), body)
    assert status == 200 and headers["content-type"] == "application/json"
    out = orjson.loads(data)
    assert out["object"] == "chat.completion" and out["model"] == MODEL and out["id"].startswith("chatcmpl-")
    assert out["created"] == 1_700_000_000
    choice = out["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("stop", "length")
    model = load_catalog().get(MODEL)
    usage = out["usage"]
    assert usage["prompt_tokens"] == estimate_chat_tokens(body, model)
    assert usage["completion_tokens"] == count_tokens(choice["message"]["content"], model)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


async def test_stream_framing_is_exact_and_matches_plain_answer() -> None:
    t = transport()
    plain = orjson.loads((await call(t, request(max_tokens=120)))[2])
    status, headers, data = await call(t, request(max_tokens=120, stream=True, stream_options={"include_usage": True}))
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert data.endswith(b"data: [DONE]\n\n")
    parsed = events(data)
    assert parsed[-1] == b"[DONE]"
    chunks = parsed[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert all(c["usage"] is None for c in chunks[:-1])
    final = chunks[-1]
    assert final["choices"] == [] and final["usage"] == plain["usage"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]


async def test_stream_without_include_usage_has_no_usage_field() -> None:
    data = (await call(transport(), request(max_tokens=20, stream=True)))[2]
    chunks = events(data)[:-1]
    assert all("usage" not in c for c in chunks) and all(c["choices"] for c in chunks)


async def test_same_request_same_bytes_and_seed_changes_answer() -> None:
    body = request(max_tokens=80, seed=1)
    first = await call(transport(), body)
    second = await call(transport(), body)
    assert first == second
    stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    assert (await call(transport(), stream_body))[2] == (await call(transport(), stream_body))[2]
    other = await call(transport(), request(max_tokens=80, seed=2))
    text = orjson.loads(first[2])["choices"][0]["message"]["content"]
    assert orjson.loads(other[2])["choices"][0]["message"]["content"] != text


async def test_ids_differ_between_calls_with_a_real_clock() -> None:
    t = SimulatorTransport(SimulatorSettings(time_scale=0))
    ids = {orjson.loads((await call(t, request(max_tokens=5)))[2])["id"] for _ in range(5)}
    assert len(ids) == 5


async def test_max_tokens_truncates_with_length() -> None:
    t = transport()
    for limit in (1, 7, 33):
        out = orjson.loads((await call(t, request(max_completion_tokens=limit, seed=limit)))[2])
        assert out["usage"]["completion_tokens"] <= limit
        assert out["usage"]["completion_tokens"] >= limit - 2
        assert out["choices"][0]["finish_reason"] == "length"


async def test_stop_sequence_cuts_the_answer() -> None:
    out = orjson.loads((await call(transport(), request(max_tokens=400, stop=[" the", "."])))[2])
    content = out["choices"][0]["message"]["content"]
    assert " the" not in content and "." not in content
    assert out["choices"][0]["finish_reason"] == "stop"


async def test_n_choices() -> None:
    out = orjson.loads((await call(transport(), request(max_tokens=30, n=3)))[2])
    assert [c["index"] for c in out["choices"]] == [0, 1, 2]
    assert len({c["message"]["content"] for c in out["choices"]}) == 3
    model = load_catalog().get(MODEL)
    assert out["usage"]["completion_tokens"] == sum(count_tokens(c["message"]["content"], model) for c in out["choices"])
    data = (await call(transport(), request(max_tokens=10, n=2, stream=True)))[2]
    indexes = {c["choices"][0]["index"] for c in events(data)[:-1]}
    assert indexes == {0, 1}


def _tool_validators() -> dict[str, jsonschema.Draft202012Validator]:
    return {t["function"]["name"]: jsonschema.Draft202012Validator(t["function"]["parameters"]) for t in (WEATHER, SEARCH)}


async def test_tool_calls_auto_mostly_call_with_valid_arguments() -> None:
    t = transport()
    validators = _tool_validators()
    called = parallel = 0
    for seed in range(40):
        out = orjson.loads((await call(t, request("What's the weather in Lisbon?", tools=[WEATHER, SEARCH], seed=seed)))[2])
        choice = out["choices"][0]
        calls = choice["message"].get("tool_calls") or []
        if calls:
            called += 1
            parallel += len(calls) > 1
            assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
            for c in calls:
                assert c["type"] == "function" and c["id"].startswith("call_")
                validators[c["function"]["name"]].validate(orjson.loads(c["function"]["arguments"]))
        else:
            assert choice["finish_reason"] in ("stop", "length")
    assert 24 <= called < 40, called
    assert parallel > 0


async def test_no_tool_call_right_after_a_tool_result_unless_forced() -> None:
    t = transport()
    messages = [
        {"role": "user", "content": "Weather in Lisbon?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
    ]
    for seed in range(15):
        out = orjson.loads((await call(t, {"model": MODEL, "messages": messages, "tools": [WEATHER], "seed": seed}))[2])
        assert "tool_calls" not in out["choices"][0]["message"]
    forced = {"model": MODEL, "messages": messages, "tools": [WEATHER], "tool_choice": "required"}
    out = orjson.loads((await call(t, forced))[2])
    assert out["choices"][0]["message"]["tool_calls"]


async def test_tool_choice_variants() -> None:
    t = transport()
    validators = _tool_validators()
    for seed in range(15):
        none = orjson.loads((await call(t, request(tools=[WEATHER], tool_choice="none", seed=seed)))[2])
        assert "tool_calls" not in none["choices"][0]["message"]
        required = orjson.loads((await call(t, request(tools=[WEATHER, SEARCH], tool_choice="required", seed=seed, parallel_tool_calls=False)))[2])
        calls = required["choices"][0]["message"]["tool_calls"]
        assert len(calls) == 1
        named = orjson.loads(
            (await call(t, request(tools=[WEATHER, SEARCH], tool_choice={"type": "function", "function": {"name": "search"}}, seed=seed)))[2]
        )
        (only,) = named["choices"][0]["message"]["tool_calls"]
        assert only["function"]["name"] == "search"
        validators["search"].validate(orjson.loads(only["function"]["arguments"]))


async def test_streamed_tool_call_arguments_reassemble() -> None:
    body = request(tools=[WEATHER], tool_choice="required", stream=True, stream_options={"include_usage": True})
    chunks = events((await call(transport(), body))[2])[:-1]
    args = ""
    names = []
    for c in chunks:
        for choice in c["choices"]:
            for tc in choice["delta"].get("tool_calls") or []:
                names += [tc["function"]["name"]] if "name" in tc["function"] else []
                args += tc["function"].get("arguments", "")
    assert names == ["get_weather"]
    _tool_validators()["get_weather"].validate(orjson.loads(args))
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_structured_output_json_schema_and_json_object() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "tags": {"type": "array", "items": {"type": "string"}},
            "meta": {"type": "object", "properties": {"lang": {"enum": ["en", "fr"]}}, "required": ["lang"], "additionalProperties": False},
        },
        "required": ["title", "rating", "tags", "meta"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "review", "schema": schema, "strict": True}}
    t = transport()
    for seed in range(10):
        out = orjson.loads((await call(t, request(response_format=fmt, seed=seed)))[2])
        jsonschema.validate(orjson.loads(out["choices"][0]["message"]["content"]), schema)
    obj = orjson.loads((await call(t, request(response_format={"type": "json_object"})))[2])
    assert isinstance(orjson.loads(obj["choices"][0]["message"]["content"]), dict)


async def test_reasoning_models_report_reasoning_tokens() -> None:
    t = transport()
    low = high = 0
    for seed in range(12):
        a = orjson.loads((await call(t, {**request(seed=seed), "model": "openai/o4-mini", "reasoning_effort": "low"}))[2])
        b = orjson.loads((await call(t, {**request(seed=seed), "model": "openai/o4-mini", "reasoning_effort": "high"}))[2])
        for out in (a, b):
            usage = out["usage"]
            reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
            visible = count_tokens(out["choices"][0]["message"]["content"], load_catalog().get("openai/o4-mini"))
            assert usage["completion_tokens"] == reasoning + visible
        low += a["usage"]["completion_tokens_details"]["reasoning_tokens"]
        high += b["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < low < high


async def test_images_audio_and_files_are_counted() -> None:
    t = transport()
    base = orjson.loads((await call(t, request(max_tokens=5)))[2])["usage"]["prompt_tokens"]
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}
    audio = {"type": "input_audio", "input_audio": {"data": base64.b64encode(b"\0" * 32_000).decode(), "format": "mp3"}}
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Page >>\n2 0 obj << /Type /Page >>\n3 0 obj << /Type /Pages >>"
    file = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()}}
    prompt = [{"type": "text", "text": "Explain how a circuit breaker protects an API"}]
    body = {"model": MODEL, "messages": [{"role": "user", "content": [*prompt, image]}], "max_tokens": 5}
    with_image = orjson.loads((await call(t, body))[2])["usage"]["prompt_tokens"]
    assert with_image == estimate_chat_tokens(body, load_catalog().get(MODEL)) and with_image > base
    body["messages"][0]["content"] = [*prompt, audio]
    assert orjson.loads((await call(t, body))[2])["usage"]["prompt_tokens"] > base
    body["messages"][0]["content"] = [*prompt, file]
    assert orjson.loads((await call(t, body))[2])["usage"]["prompt_tokens"] >= base + 2 * 1500


async def test_prompt_caching_reports_cached_prefix_in_128_token_steps() -> None:
    t = transport()
    system = " ".join(f"Rule {i}: answer politely and cite the relevant policy section." for i in range(160))
    def body(question: str) -> dict[str, Any]:
        return {"model": MODEL, "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}], "max_tokens": 5}
    first = orjson.loads((await call(t, body("What is the refund policy?")))[2])["usage"]
    second = orjson.loads((await call(t, body("How do I reset my password?")))[2])["usage"]
    assert first["prompt_tokens"] > 1024
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    cached = second["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 1024 and (cached - 1024) % 128 == 0 and cached <= second["prompt_tokens"]
    assert second["prompt_tokens"] - cached < 128 + 40
    short = orjson.loads((await call(t, request("short prompt", max_tokens=5)))[2])["usage"]
    again = orjson.loads((await call(t, request("short prompt", max_tokens=5)))[2])["usage"]
    assert short["prompt_tokens_details"]["cached_tokens"] == again["prompt_tokens_details"]["cached_tokens"] == 0
    no_cache = SimulatorTransport(SimulatorSettings(time_scale=0, cache_ttl_s=0))
    for _ in range(2):
        usage = orjson.loads((await call(no_cache, body("What is the refund policy?")))[2])["usage"]
        assert usage["prompt_tokens_details"]["cached_tokens"] == 0


async def test_errors_in_openai_shape() -> None:
    t = transport(allow_fault_headers=True)
    status, _, data = await call(t, request(model="openai/gpt-does-not-exist") | {"model": "openai/gpt-does-not-exist"})
    err = orjson.loads(data)["error"]
    assert status == 404 and err["code"] == "model_not_found" and "openai/gpt-does-not-exist" in err["message"]
    status, _, data = await call(t, {"model": MODEL, "messages": []})
    assert status == 400 and orjson.loads(data)["error"]["type"] == "invalid_request_error"
    status, _, data = await call(t, {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": "many"})
    assert status == 400 and orjson.loads(data)["error"]["param"] == "max_tokens"
    status, _, data = await call(t, request(stream_options={"include_usage": True}))
    assert status == 400 and orjson.loads(data)["error"]["param"] == "stream_options"
    response = await t.request("POST", URL, {}, b"{not json", Timeouts())
    assert response.status == 400 and "parse the JSON body" in orjson.loads(await response.read())["error"]["message"]
    status, _, data = await call(t, request(), {"X-Interlock-Simulator-Fault": "explode"})
    assert status == 400 and "x-interlock-simulator-fault" in orjson.loads(data)["error"]["message"]
    response = await t.request("POST", "http://simulator.internal/v1/images/generations", {}, b"{}", Timeouts())
    assert response.status == 404


async def test_fault_headers_ignored_unless_allowed() -> None:
    status, _, _ = await call(transport(), request(max_tokens=5), {"x-interlock-simulator-fault": "error=503"})
    assert status == 200
    status, _, _ = await call(transport(allow_fault_headers=True), request(max_tokens=5), {"x-interlock-simulator-fault": "error=503"})
    assert status == 503


@pytest.mark.parametrize("model", ["anthropic/claude-haiku-4-5", "google/gemini-2.5-flash", "mistral/mistral-large-latest"])
async def test_every_format_serves_any_catalog_model(model: str) -> None:
    out = orjson.loads((await call(transport(), request(max_tokens=10) | {"model": model}))[2])
    assert out["model"] == model and out["usage"]["completion_tokens"] > 0
