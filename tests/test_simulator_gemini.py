"""The simulator's Gemini generateContent / streamGenerateContent format through the in-process transport."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson

from interlock.core.vendor import Timeouts
from interlock.simulator import SimulatorSettings, SimulatorTransport

MODEL = "google/gemini-2.0-flash"
BASE = "http://simulator.internal/v1beta/models"
CHUNK = re.compile(rb"data: (\{.*?\})\r\n\r\n", re.S)


def transport() -> SimulatorTransport:
    return SimulatorTransport(SimulatorSettings(time_scale=0), clock=lambda: 1_700_000_000.0)


def body(**config: Any) -> dict[str, Any]:
    return {
        "contents": [{"role": "user", "parts": [{"text": "Describe a good onboarding checklist"}]}],
        "generationConfig": {"maxOutputTokens": 200, **config},
    }


async def call(t: SimulatorTransport, method: str, payload: dict[str, Any], model: str = MODEL, query: str = "") -> tuple[int, bytes]:
    url = f"{BASE}/{model}:{method}{query}"
    response = await t.request("POST", url, {"x-goog-api-key": "k"}, orjson.dumps(payload), Timeouts())
    return response.status, b"".join([c async for c in response.iter_bytes()])


def chunks(data: bytes) -> list[dict[str, Any]]:
    found = CHUNK.findall(data)
    assert b"".join(b"data: " + f + b"\r\n\r\n" for f in found) == data
    return [orjson.loads(f) for f in found]


async def test_generate_content_shape() -> None:
    status, data = await call(transport(), "generateContent", body())
    assert status == 200
    out = orjson.loads(data)
    (cand,) = out["candidates"]
    assert cand["content"]["role"] == "model" and cand["finishReason"] in ("STOP", "MAX_TOKENS")
    usage = out["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert out["modelVersion"] == MODEL and out["responseId"]


async def test_sse_stream_matches_plain_answer() -> None:
    t = transport()
    plain = orjson.loads((await call(t, "generateContent", body()))[1])
    status, data = await call(t, "streamGenerateContent", body(), query="?alt=sse")
    assert status == 200
    parsed = chunks(data)
    assert len(parsed) > 1 and b"[DONE]" not in data
    assert all("usageMetadata" not in c for c in parsed[:-1])
    assert parsed[-1]["usageMetadata"] == plain["usageMetadata"]
    assert parsed[-1]["candidates"][0]["finishReason"] == plain["candidates"][0]["finishReason"]
    text = "".join(p["text"] for c in parsed for p in c["candidates"][0]["content"]["parts"])
    assert text == plain["candidates"][0]["content"]["parts"][0]["text"]


async def test_stream_without_alt_sse_is_a_json_array() -> None:
    status, data = await call(transport(), "streamGenerateContent", body())
    assert status == 200
    items = orjson.loads(data)
    assert isinstance(items, list) and len(items) > 1 and "usageMetadata" in items[-1]


async def test_function_calls_and_response_schema() -> None:
    t = transport()
    tool = {
        "functionDeclarations": [
            {
                "name": "create_ticket",
                "parameters": {
                    "type": "OBJECT",
                    "properties": {"title": {"type": "STRING"}, "priority": {"type": "STRING", "enum": ["P1", "P2"]}},
                    "required": ["title", "priority"],
                },
            }
        ]
    }
    payload = {**body(), "tools": [tool], "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}
    out = orjson.loads((await call(t, "generateContent", payload))[1])
    call_part = out["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call_part["name"] == "create_ticket" and call_part["args"]["priority"] in ("P1", "P2")
    schema = {"type": "object", "properties": {"steps": {"type": "array", "items": {"type": "string"}, "minItems": 3}}, "required": ["steps"]}
    out = orjson.loads((await call(t, "generateContent", body(responseMimeType="application/json", responseJsonSchema=schema)))[1])
    jsonschema.validate(orjson.loads(out["candidates"][0]["content"]["parts"][0]["text"]), schema)


async def test_thinking_models_report_thoughts() -> None:
    t = transport()
    out = orjson.loads((await call(t, "generateContent", body(maxOutputTokens=8000), model="google/gemini-2.5-flash"))[1])
    usage = out["usageMetadata"]
    assert usage["thoughtsTokenCount"] > 0
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    off = orjson.loads(
        (await call(t, "generateContent", body(thinkingConfig={"thinkingBudget": 0}), model="google/gemini-2.5-flash"))[1]
    )
    assert "thoughtsTokenCount" not in off["usageMetadata"]
    shown = orjson.loads(
        (await call(t, "generateContent", body(maxOutputTokens=8000, thinkingConfig={"includeThoughts": True}), model="google/gemini-2.5-flash"))[1]
    )
    assert shown["candidates"][0]["content"]["parts"][0]["thought"] is True


async def test_cached_content_token_count() -> None:
    t = transport()
    payload = {**body(), "systemInstruction": {"parts": [{"text": "Follow the company handbook carefully. " * 200}]}}
    first = orjson.loads((await call(t, "generateContent", payload))[1])["usageMetadata"]
    second = orjson.loads((await call(t, "generateContent", payload))[1])["usageMetadata"]
    assert "cachedContentTokenCount" not in first
    assert second["cachedContentTokenCount"] >= 1024


async def test_errors_in_gemini_shape() -> None:
    status, data = await call(transport(), "generateContent", body(), model="google/gemini-nope")
    err = orjson.loads(data)["error"]
    assert status == 404 and err["status"] == "NOT_FOUND" and err["code"] == 404
    assert "models/google/gemini-nope is not found" in err["message"]
    status, data = await call(transport(), "generateContent", {"contents": []})
    assert status == 400 and orjson.loads(data)["error"]["status"] == "INVALID_ARGUMENT"


async def test_snake_case_fields_are_accepted() -> None:
    payload = {"contents": [{"parts": [{"text": "hi"}]}], "generation_config": {"max_output_tokens": 3}}
    out = orjson.loads((await call(transport(), "generateContent", payload))[1])
    assert out["candidates"][0]["finishReason"] == "MAX_TOKENS" and out["usageMetadata"]["candidatesTokenCount"] <= 3
