"""Every request shape a client can send is checked before any component reads it: a 400 naming the path.

Found in issue 14: a tool schema whose ``properties`` is not an object, or whose
``enum`` is not a list, crashed the token estimator (a 500 on five endpoints),
and ``"functions": 1`` was a 500. These tests pin the codecs' answers (status,
format, the exact ``param``) and the estimator's promise never to raise.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.catalog.tokens import estimate_chat_tokens
from interlock.core.errors import InvalidRequest
from interlock.wire.anthropic_messages import parse_messages_request
from interlock.wire.openai_chat import parse_json_object, validate_chat_request
from interlock.wire.responses import parse_responses_request
from interlock.wire.shapes import MAX_BODY_DEPTH, MAX_SCHEMA_DEPTH, schema_problem
from tests.conftest import MASTER_KEY, GatewayProcess

USER = [{"role": "user", "content": "hi"}]

#: (schema, the path below the schema's own param, the problem) — each a shape the estimator or an adapter tripped on.
BAD_SCHEMAS: list[tuple[Any, str]] = [
    ({"type": "object", "properties": 5}, ".properties"),
    ({"type": "object", "properties": [{"type": "string"}]}, ".properties"),
    ({"type": "object", "properties": {"a": {"type": "object", "properties": [1]}}}, ".properties.a.properties"),
    ({"type": "object", "properties": {"a": {"enum": 3}}}, ".properties.a.enum"),
    ({"type": "object", "properties": {"a": {"type": "array", "items": {"enum": "x"}}}}, ".properties.a.items.enum"),
    ({"type": "object", "properties": {"a": {"anyOf": [{"enum": {}}]}}}, ".properties.a.anyOf[0].enum"),
    ({"type": "object", "required": [{}]}, ".required"),
    ({"type": "object", "required": "a"}, ".required"),
    ({"type": 7}, ".type"),
    ({"type": []}, ".type"),
    ({"type": "object", "properties": {"a": 5}}, ".properties.a"),
    ({"type": "object", "properties": {"a": {"description": ["x"]}}}, ".properties.a.description"),
    ({"anyOf": {}}, ".anyOf"),
    ({"anyOf": []}, ".anyOf"),
    ({"$defs": {"x": []}}, ".$defs.x"),
    ({"type": "string", "maxLength": -1}, ".maxLength"),
    ({"type": "string", "minLength": "3"}, ".minLength"),
    ({"type": "number", "multipleOf": 0}, ".multipleOf"),
    ({"type": "string", "pattern": 5}, ".pattern"),
    ({"items": [{"type": "string"}, 3]}, ".items[1]"),
    ({"not": 3}, ".not"),
    ({"additionalProperties": "no"}, ".additionalProperties"),
    ({"dependentRequired": {"a": [1]}}, ".dependentRequired.a"),
]


def _anthropic_path(suffix: str) -> str:
    """``.properties.a.anyOf[0]`` → ``.properties.a.anyOf.0`` (Anthropic names list items by a dotted index)."""
    return suffix.replace("[", ".").replace("]", "")


def _raises(call: Any, param: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        call()
    assert info.value.status == 400
    assert info.value.param == param, info.value.message
    return info.value


@pytest.mark.parametrize(("schema", "suffix"), BAD_SCHEMAS)
def test_bad_tool_schema_is_a_400_naming_its_path_in_every_codec(schema: Any, suffix: str) -> None:
    err = _raises(lambda: validate_chat_request({"model": "m", "messages": USER, "tools": [
        {"type": "function", "function": {"name": "f", "parameters": schema}}]}), "tools[0].function.parameters" + suffix)
    assert err.code == "invalid_schema"
    _raises(lambda: validate_chat_request({"model": "m", "messages": USER, "functions": [
        {"name": "f", "parameters": schema}]}), "functions[0].parameters" + suffix)
    _raises(lambda: validate_chat_request({"model": "m", "messages": USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}), "response_format.json_schema.schema" + suffix)
    _raises(lambda: parse_messages_request({"model": "m", "max_tokens": 5, "messages": USER, "tools": [
        {"name": "f", "input_schema": schema}]}), "tools.0.input_schema" + _anthropic_path(suffix))
    _raises(lambda: parse_messages_request({"model": "m", "max_tokens": 5, "messages": USER, "output_format": {
        "type": "json_schema", "schema": schema}}), "output_format.schema" + _anthropic_path(suffix))
    _raises(lambda: parse_responses_request({"model": "m", "input": "hi", "tools": [
        {"type": "function", "name": "f", "parameters": schema}]}), "tools[0].parameters" + suffix)
    _raises(lambda: parse_responses_request({"model": "m", "input": "hi", "text": {"format": {
        "type": "json_schema", "name": "x", "schema": schema}}}), "text.format.schema" + suffix)


def test_sound_schemas_pass() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": ["string", "null"], "enum": ["x", None], "description": "d"},
        "b": {"type": "array", "items": {"$ref": "#/$defs/n"}, "minItems": 0, "maxItems": 3},
        "c": {"anyOf": [{"type": "integer", "minimum": 0, "exclusiveMaximum": 5}, True]},
        "d": {"type": "object", "additionalProperties": False, "properties": {}},
        "e": {"items": [{"type": "string"}], "additionalItems": False},
    }, "required": ["a"], "$defs": {"n": {"type": "number", "multipleOf": 0.5}},
        "dependencies": {"a": ["b"], "c": {"required": ["d"]}}}
    assert schema_problem(schema, "p") is None
    validate_chat_request({"model": "m", "messages": USER, "tools": [
        {"type": "function", "function": {"name": "f", "parameters": schema}}]})


def test_schema_nesting_is_bounded() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH + 1):
        schema = {"type": "array", "items": schema}
    found = schema_problem(schema, "p")
    assert found is not None and "nested" in found[1]


@pytest.mark.parametrize(("body", "param"), [
    ({"functions": 1}, "functions"),
    ({"functions": [1]}, "functions[0]"),
    ({"functions": [{"name": "f", "parameters": 3}]}, "functions[0].parameters"),
    ({"functions": [{"parameters": {}}]}, "functions[0].name"),
    ({"function_call": 5}, "function_call"),
    ({"function_call": {"name": 5}}, "function_call.name"),
    ({"tools": [{"type": 5}]}, "tools[0].type"),
    ({"tools": [{"type": "function", "function": {"name": "f", "description": 5}}]}, "tools[0].function.description"),
    ({"tools": [{"type": "function", "function": {"name": "f", "strict": "yes"}}]}, "tools[0].function.strict"),
    ({"tool_choice": {"type": "function", "function": 1}}, "tool_choice.function"),
    ({"tool_choice": {"type": "function", "function": {"name": 1}}}, "tool_choice.function.name"),
    ({"tool_choice": {}}, "tool_choice.type"),
    ({"tool_choice": {"type": "allowed_tools", "function": 5}}, "tool_choice.function"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": 1}}},
     "response_format.json_schema.strict"),
    ({"logit_bias": {"50256": "x"}}, "logit_bias.50256"),
    ({"logit_bias": {"50256": 101}}, "logit_bias.50256"),
    ({"metadata": {"k": 1}}, "metadata.k"),
    ({"modalities": "text"}, "modalities"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u", "detail": 1}}]}]},
     "messages[0].content[0].image_url.detail"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": 1}]}]},
     "messages[0].content[0].input_audio"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": 1}}]}]},
     "messages[0].content[0].input_audio.data"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": "x"}]}]}, "messages[0].content[0].file"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": 1}}]}]},
     "messages[0].content[0].file.file_data"),
    ({"messages": [{"role": "assistant", "content": [{"type": "refusal", "refusal": 1}]}]},
     "messages[0].content[0].refusal"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": 1}]}]},
     "messages[0].content[0].cache_control"),
    ({"messages": [{"role": "user", "content": "x", "name": 1}]}, "messages[0].name"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": 1}}]}]},
     "messages[0].tool_calls[0].function.name"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": 1, "function": {"name": "f", "arguments": "{}"}}]}]}, "messages[0].tool_calls[0].id"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": {}}}]}]}, "messages[0].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "assistant", "content": None, "function_call": 1}]}, "messages[0].function_call"),
    ({"messages": [{"role": "assistant", "content": "x", "thinking_blocks": [1]}]}, "messages[0].thinking_blocks[0]"),
    ({"messages": [{"role": "assistant", "content": "x", "reasoning_content": 1}]}, "messages[0].reasoning_content"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
])
def test_chat_shapes_are_400s_naming_the_param(body: dict[str, Any], param: str) -> None:
    _raises(lambda: validate_chat_request({"model": "m", "messages": USER, **body}), param)


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": [{"name": "f", "input_schema": {}, "description": 5}]}, "tools.0.description"),
    ({"tools": [{"name": "f", "input_schema": {}, "strict": "x"}]}, "tools.0.strict"),
    ({"tools": [{"name": "f", "input_schema": {}, "cache_control": "x"}]}, "tools.0.cache_control"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": []}]}]},
     "messages.0.content.0.cache_control"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "cache_control": 1}]}]},
     "messages.0.content.0.cache_control"),
    ({"system": [{"type": "text", "text": "s", "cache_control": 2}]}, "system.0.cache_control"),
])
def test_messages_shapes_are_400s_naming_the_param(body: dict[str, Any], param: str) -> None:
    _raises(lambda: parse_messages_request({"model": "m", "max_tokens": 5, "messages": USER, **body}), param)


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": [{"type": "function", "name": "f", "description": 1}]}, "tools[0].description"),
    ({"tools": [{"type": "function", "name": "f", "strict": 1}]}, "tools[0].strict"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {}, "strict": "1"}}}, "text.format.strict"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u", "detail": 1}]}]},
     "input[0].content[0].detail"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": 1}}]}]},
     "input[0].content[0].input_audio.data"),
])
def test_responses_shapes_are_400s_naming_the_param(body: dict[str, Any], param: str) -> None:
    _raises(lambda: parse_responses_request({"model": "m", "input": "hi", **body}), param)


def test_nesting_past_what_orjson_writes_is_refused_at_parse() -> None:
    ok = b'{"x":' + b"[" * (MAX_BODY_DEPTH - 1) + b"]" * (MAX_BODY_DEPTH - 1) + b"}"
    assert parse_json_object(ok)
    deep = b'{"x":' + b"[" * MAX_BODY_DEPTH + b"]" * MAX_BODY_DEPTH + b"}"
    err = _raises(lambda: parse_json_object(deep), None)  # type: ignore[arg-type]
    assert err.code == "invalid_json"


# ------------------------------------------------------------------ the estimator never raises

_json = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False,
                     allow_infinity=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
                         ["type", "text", "role", "content", "properties", "enum", "required", "items", "anyOf",
                          "function", "name", "parameters", "image_url", "url", "input_audio", "data", "format",
                          "tool_calls", "arguments", "description", "json_schema", "schema", "detail", "x"]),
                         inner, max_size=5), max_leaves=30)
_KEYS = st.sampled_from(["messages", "tools", "functions", "response_format"])


@given(st.one_of(_json, st.dictionaries(_KEYS, _json, max_size=4)))
@settings(max_examples=400, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_token_estimator_never_raises_on_any_json_value(request: Any) -> None:
    assert estimate_chat_tokens(request) >= 3


@pytest.mark.parametrize("request_body", [
    {"tools": [{"function": {"name": "f", "parameters": {"properties": {"a": {"enum": 3}}}}}]},
    {"tools": [{"function": {"name": "f", "parameters": {"properties": {"a": {"type": "object", "properties": [1]}}}}}]},
    {"tools": [{"function": {"name": "f", "parameters": {"properties": {"a": {}}, "required": [{}]}}}]},
    {"functions": 1},
    {"tools": 1},
    {"messages": 5},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": [1]}]}]},
    {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "a!!b", "format": "wav"}}]}]},
    {"messages": [{"role": "assistant", "tool_calls": 3}]},
    {"response_format": {"type": "json_schema", "json_schema": 3}},
])
def test_token_estimator_survives_the_shapes_that_crashed_it(request_body: dict[str, Any]) -> None:
    assert estimate_chat_tokens(request_body) >= 3


# ------------------------------------------------------------------ end to end: the five endpoints of the finding

def _post(gw: GatewayProcess, path: str, body: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    conn.request("POST", path, body=orjson.dumps(body), headers={"Authorization": f"Bearer {MASTER_KEY}",
                                                                 "Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    return resp.status, data


@pytest.mark.slow
@pytest.mark.parametrize(("schema", "suffix"), [
    ({"type": "object", "properties": {"a": {"type": "object", "properties": [1]}}}, ".properties.a.properties"),
    ({"type": "object", "properties": {"a": {"enum": 3}}}, ".properties.a.enum"),
])
def test_bad_schemas_are_400s_on_every_endpoint(gateway: GatewayProcess, schema: Any, suffix: str) -> None:
    model = "openai/gpt-4.1-mini"
    chat = {"model": model, "messages": USER, "tools": [{"type": "function", "function": {"name": "f",
                                                                                            "parameters": schema}}]}
    anthropic = {"model": "anthropic/claude-sonnet-4", "messages": USER, "tools": [{"name": "f", "input_schema": schema}]}
    for path, body, param in (
            ("/v1/chat/completions", chat, "tools[0].function.parameters" + suffix),
            ("/v1/route/explain", chat, "tools[0].function.parameters" + suffix),
            ("/v1/responses", {"model": model, "input": "hi", "tools": [{"type": "function", "name": "f",
                                                                         "parameters": schema}]},
             "tools[0].parameters" + suffix)):
        status, data = _post(gateway, path, body)
        assert status == 400, (path, data)
        assert data["error"]["param"] == param and data["error"]["type"] == "invalid_request_error"
    for path, body in (("/v1/messages", {**anthropic, "max_tokens": 5}), ("/v1/messages/count_tokens", anthropic)):
        status, data = _post(gateway, path, body)
        assert status == 400, (path, data)
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
        assert data["error"]["message"].startswith("tools.0.input_schema" + _anthropic_path(suffix))
    status, data = _post(gateway, "/v1/chat/completions", {"model": model, "messages": USER, "functions": 1})
    assert status == 400 and data["error"]["param"] == "functions"


def test_a_repeated_schema_is_not_walked_again() -> None:
    """The memo: a schema found sound is remembered by its JSON text and not walked again; a bad one is never
    remembered. (Observed through the memo's table, not by patching the walk: the compiled build binds calls
    inside a module at build time.)"""
    from interlock.wire import shapes

    memo = shapes.SchemaMemo()
    good = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert memo.problem(good, "p") is None
    assert list(memo._seen) == [orjson.dumps(good)] and memo.size == len(orjson.dumps(good))
    assert memo.problem(json.loads(json.dumps(good)), "p") is None  # an equal copy: one entry still
    assert len(memo._seen) == 1
    bad = {"properties": 1}
    assert memo.problem(bad, "p") == ("p.properties", "must be an object mapping names to schemas")
    assert memo.problem(bad, "p") is not None and len(memo._seen) == 1
    # What is in the table is not walked: a schema planted there passes, however bad.
    memo._seen[orjson.dumps(bad)] = None
    assert memo.problem(bad, "p") is None
    assert shapes.SchemaMemo().problem(bad, "p") is not None


def test_estimator_runs_on_validated_translations() -> None:
    """count_tokens' path: Anthropic → canonical → estimate, for a schema with every keyword family."""
    request = parse_messages_request({"model": "m", "messages": USER, "tools": [{"name": "f", "input_schema": {
        "type": "object", "properties": {"a": {"type": ["string", "null"], "enum": ["x", None]},
                                         "b": {"type": "array", "items": {"type": "object", "properties": {
                                             "c": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}}}},
        "required": ["a"]}}]}, require_max_tokens=False)
    assert estimate_chat_tokens(request) > 20


# ------------------------------------------------------------------ the simulator, a consumer of client schemas

@pytest.mark.parametrize("schema", [
    {"type": "string", "minLength": 10**12},
    {"type": "array", "minItems": 10**9, "items": {"type": "integer"}},
    {"type": "object", "minProperties": 10**9},
    {"type": "array", "minItems": 300, "items": {"type": "array", "minItems": 300, "items": {
        "type": "array", "minItems": 300}}},
])
def test_simulator_generation_is_bounded_whatever_the_schema_asks(schema: dict[str, Any]) -> None:
    """In-process, the simulator shares the gateway's event loop: a schema must not make it hang."""
    import random
    import time

    from interlock.simulator.jsonschema_gen import MAX_STRING, MAX_VALUES, generate

    started = time.perf_counter()
    value = generate(schema, random.Random(7))
    assert time.perf_counter() - started < 2.0
    assert len(orjson.dumps(value)) < (MAX_STRING + 64) * MAX_VALUES


@pytest.mark.parametrize("schema", [
    {"$ref": "#"},
    {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    {"type": "object", "properties": {"x": {"$ref": "#"}}, "required": ["x"]},
])
def test_simulator_self_references_fail_the_draw_not_the_interpreter(schema: dict[str, Any]) -> None:
    import random

    from interlock.simulator.jsonschema_gen import SchemaError, generate

    with pytest.raises(SchemaError):
        generate(schema, random.Random(7))


def test_simulator_refuses_a_pattern_that_does_not_compile() -> None:
    from interlock.simulator.jsonschema_gen import SchemaError, check_schema

    with pytest.raises(SchemaError, match="regular expression"):
        check_schema({"type": "object", "properties": {"a": {"type": "string", "pattern": "["}}})


@pytest.mark.slow
@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "string", "minLength": 10**12}}, "required": ["a"]},
    {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "["}}},
])
def test_hostile_schemas_through_the_gateway_are_answered_quickly(gateway: GatewayProcess,
                                                                  schema: dict[str, Any]) -> None:
    import time

    started = time.monotonic()
    status, data = _post(gateway, "/v1/chat/completions", {
        "model": "openai/gpt-4.1-mini", "messages": USER,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert status < 500, data
    assert time.monotonic() - started < 5
    status, data = _post(gateway, "/v1/chat/completions", {
        "model": "openai/gpt-4.1-mini", "messages": USER, "tool_choice": "required",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]})
    assert status < 500, data


@pytest.mark.parametrize("choice", [{"type": "allowed_tools", "function": 5}, {"type": "x", "function": []},
                                    {"type": "function"}, {"type": "function", "function": {"name": 3}}])
def test_translators_read_a_tool_choice_of_any_shape(choice: dict[str, Any]) -> None:
    """Defence in depth: the adapters must not crash on a tool_choice the codec would refuse."""
    from interlock.vendors.anthropic import chat as anthropic
    from interlock.vendors.bedrock import chat as bedrock
    from interlock.vendors.cohere import chat as cohere
    from interlock.vendors.gemini import chat as gemini
    from interlock.vendors.translate_common import Drops

    request = {"model": "m", "messages": USER, "tool_choice": choice,
               "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}
    assert gemini._tool_config(choice) is not None
    for call in (lambda: anthropic._tool_choice(choice, None),
                 lambda: bedrock.encode_request(request, "anthropic.claude", Drops(request, "bedrock")),
                 lambda: cohere.encode_request(request, "command", Drops(request, "cohere"), stream=False)):
        with contextlib.suppress(InvalidRequest):  # a 400 naming the parameter is fine; an AttributeError is not
            call()
