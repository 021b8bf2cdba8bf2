"""Responses API ⇄ canonical: requests in, response objects out, and the store, against documented shapes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import Response

from interlock.core.context import RequestContext
from interlock.core.errors import InvalidRequest
from interlock.core.principal import Principal
from interlock.core.responses import ADMIN, Owner, StoredResponse
from interlock.ledger.responses_store import SQLiteResponses
from interlock.wire.responses import (
    ResponsesCodec,
    ResponsesRequest,
    input_messages,
    parse_responses_request,
)
from interlock.wire.responses_output import output_items, responses_usage

# -------------------------------------------------------------- requests in

#: A multi-turn input using every item type the Responses docs describe for function calling and reasoning.
ITEMS: list[Any] = [
    {"role": "developer", "content": "Use metric units."},
    {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "Weather in Paris? See the photo and report."},
        {"type": "input_image", "image_url": "https://example.com/paris.jpg", "detail": "low"},
        {"type": "input_file", "filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
    ]},
    {"type": "reasoning", "id": "rs_1", "summary": [],
     "content": [{"type": "reasoning_text", "text": "Need the weather tool."}], "encrypted_content": "SIG"},
    {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
     "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
    {"type": "function_call", "id": "fc_1", "call_id": "call_A", "name": "get_weather", "arguments": '{"city":"Paris"}'},
    {"type": "function_call", "id": "fc_2", "call_id": "call_B", "name": "get_time", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_A", "output": "18C"},
    {"type": "function_call_output", "call_id": "call_B", "output": [{"type": "input_text", "text": "noon"}]},
]


def test_items_become_canonical_messages() -> None:
    developer, user, assistant, result_a, result_b = input_messages(ITEMS)
    assert developer == {"role": "developer", "content": "Use metric units."}
    assert user["content"] == [
        {"type": "text", "text": "Weather in Paris? See the photo and report."},
        {"type": "image_url", "image_url": {"url": "https://example.com/paris.jpg", "detail": "low"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "report.pdf"}},
    ]
    assert assistant == {
        "role": "assistant", "content": "Checking.",
        "thinking_blocks": [{"type": "thinking", "thinking": "Need the weather tool.", "signature": "SIG"}],
        "reasoning_content": "Need the weather tool.",
        "tool_calls": [
            {"id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_B", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}
    assert result_a == {"role": "tool", "tool_call_id": "call_A", "content": "18C"}
    assert result_b == {"role": "tool", "tool_call_id": "call_B", "content": [{"type": "text", "text": "noon"}]}


def test_request_fields_translate() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    out = parse_responses_request({
        "model": "openai/gpt-4.1-mini", "input": "hi", "instructions": "Be brief.", "stream": True,
        "max_output_tokens": 300, "temperature": 0.3, "top_p": 0.8, "parallel_tool_calls": False,
        "reasoning": {"effort": "low", "summary": "auto"}, "metadata": {"team": "a"}, "store": False,
        "tools": [{"type": "function", "name": "get_weather", "description": "d", "parameters": schema,
                   "strict": True}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True},
                 "verbosity": "low"},
        "user": "u-1",
    })
    assert isinstance(out, ResponsesRequest)
    assert out["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert (out["max_completion_tokens"], out["temperature"], out["top_p"]) == (300, 0.3, 0.8)
    assert out["parallel_tool_calls"] is False and out["reasoning_effort"] == "low" and out["verbosity"] == "low"
    assert out["tools"] == [{"type": "function", "function": {"name": "get_weather", "parameters": schema,
                                                              "description": "d", "strict": True}}]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "city", "schema": schema, "strict": True}}
    assert out["user"] == "u-1"
    assert "metadata" not in out and "store" not in out  # Responses-only state stays with the gateway
    assert out.meta.store is False and out.meta.echo["metadata"] == {"team": "a"}
    assert orjson.loads(orjson.dumps(out)) == dict(out)  # serialises like the plain canonical dict


def test_previous_response_continues_its_conversation() -> None:
    previous = StoredResponse(id="resp_1", model="m", owner=None, previous_response_id=None, response={},
                              input_items=[], conversation=[{"role": "user", "content": "a"},
                                                            {"role": "assistant", "content": "b"}])
    out = parse_responses_request({"model": "m", "input": "c", "instructions": "new rules"}, previous)
    assert out["messages"] == [{"role": "system", "content": "new rules"}, {"role": "user", "content": "a"},
                               {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert out.meta.previous_response_id == "resp_1" and out.meta.turn == [{"role": "user", "content": "c"}]


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "m", "input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0].output"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].file_id"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}, {"type": "x"}]}]},
     "input[0].content[1].type"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "input": "x", "tool_choice": {"type": "function", "name": "g"}}, "tool_choice.name"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"model": "m", "input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "input": "x", "temperature": 3}, "temperature"),
    ({"model": "m", "input": "x", "metadata": {"a": 1}}, "metadata"),
    ({"model": "m", "input": "x", "background": True}, "background"),
    ({"model": "m", "input": "x", "store": "yes"}, "store"),
])
def test_invalid_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_responses_request(body)
    assert info.value.param == param
    assert f"'{param}" in info.value.message


# -------------------------------------------------------------- answers out

USAGE = {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130, "cost": 0.001,
         "prompt_tokens_details": {"cached_tokens": 60}, "completion_tokens_details": {"reasoning_tokens": 12}}


def test_usage_shape() -> None:
    assert responses_usage(USAGE) == {
        "input_tokens": 100, "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 0},
        "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 130, "cost": 0.001}


def test_output_items_for_reasoning_text_and_calls() -> None:
    message = {"role": "assistant", "content": "Checking.", "reasoning_content": "think",
               "thinking_blocks": [{"type": "thinking", "thinking": "think", "signature": "SIG"}],
               "tool_calls": [{"id": "call_1", "type": "function",
                               "function": {"name": "f", "arguments": '{"a":1}'}}]}
    items = output_items(message, "abc")
    assert items == [
        {"id": "rs_abc0000", "type": "reasoning", "summary": [],
         "content": [{"type": "reasoning_text", "text": "think"}], "encrypted_content": "SIG"},
        {"id": "msg_abc0001", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}]},
        {"id": "fc_abc0002", "type": "function_call", "status": "completed", "call_id": "call_1", "name": "f",
         "arguments": '{"a":1}'}]
    # Replayed as input, the items give back the same canonical assistant turn.
    assert input_messages(items) == [{"role": "assistant", "content": "Checking.", "thinking_blocks": [
        {"type": "thinking", "thinking": "think", "signature": "SIG"}], "reasoning_content": "think",
        "tool_calls": message["tool_calls"]}]


async def test_completion_is_a_valid_response_and_is_stored(tmp_path: Path) -> None:
    store = SQLiteResponses(tmp_path / "state.db")
    codec = ResponsesCodec(store)
    request = parse_responses_request({"model": "fast", "input": "hi", "metadata": {"k": "v"},
                                       "max_output_tokens": 5})
    ctx = RequestContext("openai.responses")
    ctx.requested_model = "fast"
    data = {"choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "He"}}],
            "usage": USAGE}
    body = orjson.loads(codec.completion(ctx, request, data))
    response = Response.model_validate(body)
    assert response.id == "resp_" + ctx.id[4:] and response.object == "response"
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "He" and response.metadata == {"k": "v"} and response.max_output_tokens == 5
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 12
    found = await store.get(response.id, ADMIN)
    assert found is not None and found.response == body
    assert found.conversation == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "He"}]
    assert found.input_items == [{"type": "message", "role": "user", "content": "hi"}]
    assert await store.delete(response.id, ADMIN) and await store.get(response.id, ADMIN) is None
    assert not await store.delete(response.id, ADMIN)
    store.close()


async def test_codec_reads_previous_response_from_the_store(tmp_path: Path) -> None:
    store = SQLiteResponses(tmp_path / "state.db")
    codec = ResponsesCodec(store)
    store.put_sync(StoredResponse(id="resp_x", model="m", owner=None, previous_response_id=None, response={},
                                  input_items=[], conversation=[{"role": "user", "content": "a"}]))
    ctx = RequestContext("openai.responses")
    ctx.principal = Principal("admin", "ik-admin-xyz")
    out = await codec.parse(b'{"model": "m", "input": "b", "previous_response_id": "resp_x"}', ctx)
    assert out["messages"] == [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(InvalidRequest) as info:
        await codec.parse(b'{"model": "m", "input": "b", "previous_response_id": "resp_missing"}', ctx)
    assert info.value.param == "previous_response_id" and info.value.status == 400
    store.close()


async def test_a_follow_up_waits_for_a_pending_write(tmp_path: Path) -> None:
    store = SQLiteResponses(tmp_path / "state.db")
    item = StoredResponse(id="resp_w", model="m", owner=None, previous_response_id=None, response={"id": "resp_w"},
                          input_items=[], conversation=[])
    store.save_soon(item)  # not awaited: the next read must still see it
    found = await store.get("resp_w", ADMIN)
    assert found is not None and found.response == {"id": "resp_w"}
    await asyncio.sleep(0)
    store.close()


def _stored(rid: str, project: str | None) -> StoredResponse:
    return StoredResponse(id=rid, model="m", owner=None, previous_response_id=None, response={"id": rid},
                          input_items=["secret prompt"], conversation=[{"role": "user", "content": "a"}],
                          project=project)


async def test_store_reads_and_deletes_only_the_owners_responses(tmp_path: Path) -> None:
    store = SQLiteResponses(tmp_path / "state.db")
    store.put_sync(_stored("resp_a", "alpha"))
    store.put_sync(_stored("resp_old", None))  # stored before responses carried a project
    alpha, beta = Owner("alpha"), Owner("beta")
    assert (await store.get("resp_a", alpha)) is not None and (await store.get("resp_a", ADMIN)) is not None
    assert await store.get("resp_a", beta) is None
    assert not await store.delete("resp_a", beta)  # another project's delete deletes nothing
    assert (await store.get("resp_a", alpha)) is not None
    assert await store.get("resp_old", alpha) is None and (await store.get("resp_old", ADMIN)) is not None
    assert await store.get("resp_a", Owner(None)) is None  # no project, not admin: owns nothing
    assert await store.delete("resp_a", alpha) and await store.get("resp_a", ADMIN) is None
    store.close()


async def test_previous_response_of_another_project_reads_as_unknown(tmp_path: Path) -> None:
    store = SQLiteResponses(tmp_path / "state.db")
    store.put_sync(_stored("resp_a", "alpha"))
    codec = ResponsesCodec(store)
    messages: dict[str, str] = {}
    for project, rid in (("beta", "resp_a"), ("beta", "resp_zz")):
        ctx = RequestContext("openai.responses")
        ctx.principal = Principal("project", "ik-abc", project, "key_b")
        with pytest.raises(InvalidRequest) as info:
            await codec.parse(orjson.dumps({"model": "m", "input": "b", "previous_response_id": rid}), ctx)
        assert info.value.param == "previous_response_id" and info.value.code == "previous_response_not_found"
        messages[rid] = info.value.message.replace(rid, "ID")
    assert messages["resp_a"] == messages["resp_zz"]
    store.close()


async def test_zero_data_retention_stores_nothing_and_refuses_previous_response_id(tmp_path: Path) -> None:
    store = SQLiteResponses(tmp_path / "state.db")
    codec = ResponsesCodec(store)
    ctx = RequestContext("openai.responses")
    ctx.principal = Principal("project", "ik-abc", "alpha", "key_a", zero_data_retention=True)
    ctx.zero_data_retention = True
    request = await codec.parse(b'{"model": "m", "input": "hi", "store": true}', ctx)
    data = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "yo"}}]}
    body = orjson.loads(codec.completion(ctx, request, data))
    assert body["store"] is False
    await asyncio.sleep(0.05)
    assert await store.get(body["id"], ADMIN) is None
    with pytest.raises(InvalidRequest) as info:
        await codec.parse(b'{"model": "m", "input": "b", "previous_response_id": "resp_x"}', ctx)
    assert info.value.param == "previous_response_id" and info.value.status == 400
    assert "zero data retention" in info.value.message
    store.close()
