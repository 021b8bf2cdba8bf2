"""End to end: the official ``openai`` SDK's ``client.responses`` → a real gateway → Chat-speaking vendors."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess
from tests.mock_openai import MockVendor
from tests.test_inbound_messages_e2e import (
    SIGNATURE,
    THOUGHT,
    ThinkingVendor,
    http,
    thinking_gateway,
    thinking_vendor,
)

pytestmark = pytest.mark.slow
__all__ = ["thinking_gateway", "thinking_vendor"]  # module fixtures shared with the Messages tests


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return gateway.openai_client()


def test_create_and_retrieve(client: openai.OpenAI, mock_vendor: MockVendor) -> None:
    raw = client.responses.with_raw_response.create(model="mock/ok", input="hi", instructions="Be brief.",
                                                    max_output_tokens=64, metadata={"ticket": "T-1"})
    response = raw.parse()
    assert response.id == "resp_" + raw.headers["x-interlock-request-id"].removeprefix("req_")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Hello from the mock."
    assert response.metadata == {"ticket": "T-1"} and response.instructions == "Be brief."
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (12, 5, 17)
    body = mock_vendor.last("ok")["body"]
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert body["max_completion_tokens"] == 64 and "metadata" not in body and "store" not in body
    assert client.responses.retrieve(response.id).output_text == "Hello from the mock."


async def test_async_create(gateway: GatewayProcess) -> None:
    aclient = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)
    response = await aclient.responses.create(model="mock/ok", input=[{"role": "user", "content": "hi"}])
    assert response.output_text == "Hello from the mock."


def test_streaming_events(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="mock/ok", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from the mock."
    final = events[-1]
    assert final.type == "response.completed" and final.response.output_text == text
    assert final.response.usage is not None and final.response.usage.output_tokens == 5


def test_stream_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model="mock/ok", input="hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "Hello from the mock." and final.status == "completed"


def test_function_call_round_trip_with_previous_response_id(client: openai.OpenAI, mock_vendor: MockVendor) -> None:
    tools: Any = [{"type": "function", "name": "get_weather", "description": "Weather for a city",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    first = client.responses.create(model="mock/tools", input="Weather in Paris?", tools=tools,
                                    tool_choice="required")
    call = first.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert mock_vendor.last("tools")["body"]["tools"][0]["function"]["name"] == "get_weather"

    second = client.responses.create(model="mock/echo", previous_response_id=first.id, tools=tools, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees"}])
    assert second.previous_response_id == first.id
    sent = mock_vendor.last("echo")["body"]["messages"]
    assert sent[0] == {"role": "user", "content": "Weather in Paris?"}
    assert sent[1]["role"] == "assistant" and sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "18 degrees"}


def test_streamed_function_call(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="mock/tools", input="Weather?", stream=True, tools=[
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]))
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(deltas) == json.loads(done.arguments) == {"city": "Paris"}
    final = events[-1]
    assert final.type == "response.completed" and final.response.output[0].type == "function_call"


def test_structured_output_on_the_simulator(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    response = client.responses.create(model="openai/gpt-4.1-mini", input="A big city, as JSON.",
                                       text={"format": {"type": "json_schema", "name": "city", "schema": schema,
                                                        "strict": True}})
    data = json.loads(response.output_text)
    assert isinstance(data["city"], str) and isinstance(data["population"], int)
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"


def test_streamed_simulator_answer_is_priced(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="openai/gpt-4.1-mini", input="Tell me about gateways.",
                                          stream=True))
    final = events[-1]
    assert final.type == "response.completed" and final.response.output_text
    usage: Any = final.response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0 and usage.model_extra["cost"] > 0


def test_store_false_and_delete(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    unstored = client.responses.create(model="mock/ok", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="mock/ok", input="more", previous_response_id=unstored.id)
    assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]

    kept = client.responses.create(model="mock/ok", input="hi")
    items = client.responses.input_items.list(kept.id)
    assert [item.type for item in items.data] == ["message"]
    status, body = http("DELETE", f"{gateway.base_url}/responses/{kept.id}")
    assert status == 200 and json.loads(body) == {"id": kept.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(kept.id)


def test_reasoning_round_trips_as_items(thinking_gateway: GatewayProcess, thinking_vendor: ThinkingVendor) -> None:
    client = thinking_gateway.openai_client()
    first = client.responses.create(model="think/r1", input="2+2?", reasoning={"effort": "high"}, store=False)
    assert thinking_vendor.last("r1")["body"]["reasoning_effort"] == "high"
    reasoning, message = first.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == SIGNATURE
    assert reasoning.content is not None and reasoning.content[0].text == THOUGHT
    assert message.type == "message" and first.output_text == "4"
    assert first.usage is not None and first.usage.output_tokens_details.reasoning_tokens == 25
    assert first.usage.input_tokens_details.cached_tokens == 80

    replay: Any = [{"role": "user", "content": "2+2?"}, *[item.model_dump(exclude_none=True) for item in first.output],
                   {"role": "user", "content": "and 3+3?"}]
    client.responses.create(model="think/r1", input=replay, store=False)
    assistant = thinking_vendor.last("r1")["body"]["messages"][1]
    assert assistant["thinking_blocks"] == [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}]
    assert assistant["content"] == "4"


def test_streamed_reasoning(thinking_gateway: GatewayProcess) -> None:
    client = thinking_gateway.openai_client()
    events = list(client.responses.create(model="think/r1", input="2+2?", stream=True))
    thought = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert thought == THOUGHT
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output[0].type == "reasoning" and final.response.output[0].encrypted_content == SIGNATURE


# -------------------------------------------------------------- errors, in OpenAI's shape


def test_errors_are_openai_shaped(gateway: GatewayProcess, client: openai.OpenAI) -> None:
    bad = openai.OpenAI(base_url=gateway.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.create(model="mock/ok", input="hi")
    with pytest.raises(openai.AuthenticationError):
        bad.responses.retrieve("resp_x")
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="nowhere/model", input="hi")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="mock/status-429", input="hi")
    with pytest.raises(openai.BadRequestError) as invalid:
        client.responses.create(model="mock/ok", input="hi", tools=[{"type": "web_search"}])
    assert invalid.value.param == "tools[0].type"
    status, body = http("PUT", f"{gateway.base_url}/responses/resp_x")
    assert status == 405 and "error" in json.loads(body)


def test_mid_stream_failure_is_response_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="mock/stall", input="hi", stream=True))
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error is not None and "idle" in failed.response.error.message
