"""The canonical TypedDicts (core/canonical.py) describe what really flows: codec outputs checked against them.

TypedDicts are not checked at run time, so a shape could drift from the dicts
the codecs build. These tests walk real values - each inbound codec's canonical
request, the simulator's Chat completion and chunks, the usage objects interlock
writes - and check them against the declared shapes: required keys present,
every declared key of the declared type. Keys a shape does not name pass (the
canonical request carries unknown fields through).
"""

from __future__ import annotations

import types
from typing import (
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

import orjson
import pytest

from interlock.core import canonical
from interlock.core.canonical import (
    CanonicalUsage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    ContentPart,
    Message,
)
from interlock.core.pricing import Usage
from interlock.simulator.engine import Engine
from interlock.simulator.settings import SimulatorSettings
from interlock.wire.anthropic_messages import parse_messages_request
from interlock.wire.chat_validation import validate_chat_request
from interlock.wire.responses import assistant_message, parse_responses_request
from interlock.wire.responses_output import output_items
from tests.test_inbound_messages import FULL_REQUEST
from tests.test_inbound_responses import ITEMS


def required_keys(shape: Any) -> set[str]:
    """A TypedDict's required keys, read from its annotations: ``__required_keys__`` misses ``Required[...]``
    and ``NotRequired[...]`` when the annotations are strings (``from __future__ import annotations``)."""
    out = set()
    for key, hint in get_type_hints(shape, include_extras=True).items():
        marker = get_origin(hint)
        if marker is Required or (marker is not NotRequired and shape.__total__):
            out.add(key)
    return out


def problems(value: Any, shape: Any, path: str = "$") -> list[str]:
    """Where ``value`` departs from the type ``shape`` (empty when it conforms)."""
    if shape is Any or shape is object:
        return []
    if shape is None or shape is type(None):
        return [] if value is None else [f"{path}: expected null, got {value!r}"]
    origin = get_origin(shape)
    if origin in (Union, types.UnionType):
        found = [problems(value, option, path) for option in get_args(shape)]
        return [] if any(not p for p in found) else min(found, key=len)
    if origin is Literal:
        return [] if value in get_args(shape) else [f"{path}: {value!r} is not one of {get_args(shape)}"]
    if is_typeddict(shape):
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({shape.__name__}), got {value!r}"]
        out = [f"{path}.{key}: missing ({shape.__name__})" for key in required_keys(shape) if key not in value]
        hints = get_type_hints(shape)
        for key, item in value.items():
            if key in hints:
                out += problems(item, hints[key], f"{path}.{key}")
        return out
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected an array, got {value!r}"]
        (item_type,) = get_args(shape)
        return [p for i, item in enumerate(value) for p in problems(item, item_type, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        _, value_type = get_args(shape)
        return [p for key, item in value.items() for p in problems(item, value_type, f"{path}.{key}")]
    if shape is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif shape is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, shape)
    return [] if ok else [f"{path}: expected {shape.__name__}, got {value!r}"]


# -------------------------------------------------------------- the checker itself


def test_the_checker_finds_wrong_missing_and_mistyped_fields() -> None:
    assert problems({"role": "user", "content": "hi", "extra": 1}, Message) == []
    assert problems({"content": "hi"}, Message) == ["$.role: missing (Message)"]
    assert problems({"role": "user", "content": [{"type": "text", "text": 3}]}, Message)
    assert problems({"type": "image_url", "image_url": {"url": "u"}}, ContentPart) == []
    assert problems({"type": "video"}, ContentPart)
    assert problems({"prompt_tokens": True}, CanonicalUsage)


def test_every_shape_resolves() -> None:
    """Each TypedDict's annotations name real types (a typo would only show up here)."""
    shapes = [v for v in vars(canonical).values() if is_typeddict(v)]
    assert len(shapes) > 20
    for shape in shapes:
        get_type_hints(shape)


# -------------------------------------------------------------- requests from the codecs

#: A Chat request using every part, role and tool field the codec checks.
CHAT_REQUEST: dict[str, Any] = {
    "model": "openai/gpt-4o-mini",
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "developer", "content": "Metric units."},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"}},
        ]},
        {"role": "assistant", "content": None, "reasoning_content": "Look it up.",
         "thinking_blocks": [{"type": "thinking", "thinking": "Look it up.", "signature": "sig"}],
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}], "refusal": "No."},
    ],
    "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look up.", "strict": True,
                                                "parameters": {"type": "object", "properties": {}}}}],
    "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}},
    "stream": True, "stream_options": {"include_usage": True}, "max_completion_tokens": 100, "temperature": 0.5,
    "top_p": 1, "seed": 7, "stop": ["END"], "logprobs": True, "top_logprobs": 2, "logit_bias": {"50256": -100},
    "metadata": {"team": "a"}, "user": "u1", "reasoning_effort": "low", "parallel_tool_calls": False,
    "x-unknown-field": {"passes": "through"},
}


def test_a_validated_chat_request_is_a_chat_request() -> None:
    request = orjson.loads(orjson.dumps(CHAT_REQUEST))
    validate_chat_request(request)
    assert problems(request, ChatRequest) == []


def test_the_messages_codec_builds_a_chat_request() -> None:
    assert problems(parse_messages_request(FULL_REQUEST), ChatRequest) == []


def test_the_responses_codec_builds_a_chat_request() -> None:
    body = {"model": "openai/gpt-4o-mini", "instructions": "Be brief.", "input": ITEMS, "stream": True,
            "max_output_tokens": 50, "temperature": 0.2, "top_logprobs": 3, "user": "u1",
            "include": ["message.output_text.logprobs"], "parallel_tool_calls": False,
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": True}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"verbosity": "low", "format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
            "reasoning": {"effort": "low"}}
    assert problems(dict(parse_responses_request(body)), ChatRequest) == []


# -------------------------------------------------------------- answers and usage


def _simulated(stream: bool) -> list[bytes]:
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}],
                         "stream": stream, "stream_options": {"include_usage": True}, "logprobs": True,
                         "top_logprobs": 1})
    plan = Engine(SimulatorSettings(time_scale=0, seed=1)).plan("POST", "/v1/chat/completions", "", {}, body)
    return [payload for _, payload in plan.events]


def test_a_simulated_completion_is_a_chat_completion() -> None:
    (payload,) = _simulated(stream=False)
    assert problems(orjson.loads(payload), ChatCompletion) == []


def test_simulated_chunks_are_chat_completion_chunks() -> None:
    chunks = [line[6:] for payload in _simulated(stream=True) for line in payload.split(b"\n")
              if line.startswith(b"data: {")]
    assert len(chunks) > 2
    for chunk in chunks:
        assert problems(orjson.loads(chunk), ChatCompletionChunk) == []


@pytest.mark.parametrize("usage", [
    Usage(input_tokens=10, output_tokens=5),
    Usage(input_tokens=10, output_tokens=5, cache_read_tokens=3, cache_write_tokens=2, cache_write_1h_tokens=1,
          reasoning_tokens=4, estimated=True),
])
def test_usage_to_openai_is_canonical_usage(usage: Usage) -> None:
    """The codecs cast ``Usage.to_openai()`` to CanonicalUsage: it must be one."""
    assert problems(usage.to_openai(), CanonicalUsage) == []


def test_a_replayed_assistant_turn_is_a_message() -> None:
    message: Message = {"role": "assistant", "content": "Sunny.", "reasoning_content": "Check.",
                        "thinking_blocks": [{"type": "thinking", "thinking": "Check.", "signature": "S"}],
                        "tool_calls": [{"id": "c1", "type": "function",
                                        "function": {"name": "f", "arguments": "{}"}}]}
    replayed = assistant_message(output_items(message, "abc"))
    assert problems(replayed, Message) == []
