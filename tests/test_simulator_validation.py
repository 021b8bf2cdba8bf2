"""Malformed requests get the vendor's 400 (never a crash), in each wire format's error shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from interlock.simulator.engine import Engine
from interlock.simulator.settings import SimulatorSettings

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
GEMINI = "/v1beta/models/google/gemini-2.5-flash:generateContent"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(SimulatorSettings(time_scale=0))


def status_and_body(engine: Engine, path: str, body: Any) -> tuple[int, Any]:
    plan = engine.plan("POST", path, "", {}, orjson.dumps(body))
    return plan.status, orjson.loads(plan.events[0][1])


@pytest.mark.parametrize(
    "body",
    [
        {"model": "openai/gpt-4.1-mini", "messages": [{"role": {}, "content": "x"}]},
        {"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": 5}]},
        {"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
        {"model": "openai/gpt-4.1-mini", "messages": [{"role": "assistant", "content": None, "tool_calls": -1}]},
        {"model": "openai/gpt-4.1-mini", "messages": [{"role": "assistant", "content": None, "tool_calls": [{"function": 0}]}]},
        {"model": "openai/gpt-4.1-mini", "messages": USER, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 3}}}]},
        {"model": "openai/gpt-4.1-mini", "messages": USER, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": []}}}]},
        {"model": "openai/gpt-4.1-mini", "messages": USER, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"required": "a"}}}},
        {"model": "openai/gpt-4.1-mini", "messages": USER, "tool_choice": {"type": "function", "function": {"name": "missing"}}},
        {"model": "openai/gpt-4.1-mini", "messages": USER, "n": 0},
        {"model": "openai/gpt-4.1-mini", "messages": USER, "stop": ["a", "b", "c", "d", "e"]},
        {"model": "openai/gpt-4.1-mini", "messages": USER, "reasoning_effort": "extreme"},
        [1, 2, 3],
    ],
)
def test_openai_bad_requests(engine: Engine, body: Any) -> None:
    status, error = status_and_body(engine, OPENAI, body)
    assert status == 400
    assert error["error"]["type"] == "invalid_request_error" and error["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "anthropic/claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]},
        {"model": "anthropic/claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "image", "source": [None]}]}]},
        {"model": "anthropic/claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
        {"model": "anthropic/claude-haiku-4-5", "max_tokens": 10, "messages": USER, "tools": [{"name": "f", "input_schema": {"type": [1]}}]},
        {"model": "anthropic/claude-haiku-4-5", "max_tokens": 10, "messages": USER, "tool_choice": {"type": "sometimes"}},
        {"model": "anthropic/claude-haiku-4-5", "max_tokens": 0, "messages": USER},
        {"model": "anthropic/claude-haiku-4-5", "max_tokens": 2000, "messages": USER, "thinking": {"type": "enabled", "budget_tokens": 100}},
    ],
)
def test_anthropic_bad_requests(engine: Engine, body: Any) -> None:
    status, error = status_and_body(engine, ANTHROPIC, body)
    assert status == 400
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "body",
    [
        {"contents": [{"parts": []}]},
        {"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
        {"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": {"parts": 1.5}},
        {"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": 1}]},
        {"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": 1}}]}]},
        {"contents": [{"parts": [{"text": "x"}]}], "toolConfig": {"functionCallingConfig": 1.5}},
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 99}},
        {"contents": [{"parts": [{"mystery": 1}]}]},
    ],
)
def test_gemini_bad_requests(engine: Engine, body: Any) -> None:
    status, error = status_and_body(engine, GEMINI, body)
    assert status == 400
    assert error["error"]["status"] == "INVALID_ARGUMENT" and error["error"]["code"] == 400


def test_wrong_method_and_unknown_path(engine: Engine) -> None:
    assert engine.plan("GET", OPENAI, "", {}, b"").status == 405
    assert engine.plan("POST", "/v2/whatever", "", {}, b"{}").status == 404
