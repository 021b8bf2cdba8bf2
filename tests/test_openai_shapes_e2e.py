"""End to end: required fields of OpenAI's shapes in what a real gateway answers (issue 15).

The official SDK's pydantic models accept a missing required-nullable field, so
each answer is also read raw and checked against the OpenAPI document's
``required`` lists for the schema it answers with.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.conftest import GatewayProcess

pytestmark = pytest.mark.slow

MODEL_REQUIRED = {"id", "object", "created", "owned_by"}  # Model
ERROR_REQUIRED = {"type", "message", "param", "code"}  # Error


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return gateway.openai_client()


def test_models_retrieve_percent_encoded_id_answers_the_model_shape(client: openai.OpenAI) -> None:
    raw = client.models.with_raw_response.retrieve("openai/gpt-4.1-mini")  # GET /v1/models/openai%2Fgpt-4.1-mini
    body: dict[str, Any] = raw.http_response.json()
    assert body.keys() >= MODEL_REQUIRED
    assert body["id"] == "openai/gpt-4.1-mini" and body["object"] == "model"
    assert isinstance(body["created"], int) and isinstance(body["owned_by"], str) and body["owned_by"]
    model = raw.parse()
    assert (model.id, model.object) == ("openai/gpt-4.1-mini", "model")


def test_model_list_entries_have_the_model_shape(client: openai.OpenAI) -> None:
    body: dict[str, Any] = client.models.with_raw_response.list().http_response.json()
    assert body["object"] == "list" and body["data"]
    for entry in body["data"]:
        assert entry.keys() >= MODEL_REQUIRED and entry["object"] == "model"


def test_error_bodies_carry_param_and_code(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("nope/nope")
    error = info.value.response.json()["error"]
    assert error.keys() >= ERROR_REQUIRED
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="openai/gpt-4.1-mini", messages=[])
    assert bad.value.response.json()["error"].keys() >= ERROR_REQUIRED


def test_embeddings_answer_has_every_required_field(client: openai.OpenAI) -> None:
    body: dict[str, Any] = client.embeddings.with_raw_response.create(
        model="openai/text-embedding-3-small", input=["one", "two"], encoding_format="float").http_response.json()
    assert body.keys() >= {"object", "model", "data", "usage"} and body["object"] == "list"
    assert body["usage"].keys() >= {"prompt_tokens", "total_tokens"}
    assert [e["index"] for e in body["data"]] == [0, 1]
    for entry in body["data"]:
        assert entry.keys() >= {"index", "object", "embedding"} and entry["object"] == "embedding"


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "google/gemini-2.5-flash", "openai/gpt-4.1-mini"])
def test_simulated_chat_answers_carry_refusal_and_logprobs(client: openai.OpenAI, model: str) -> None:
    # The in-process simulator speaks OpenAI's wire for every lab; the native adapters' answers
    # are checked in test_openai_shapes.py.
    body: dict[str, Any] = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=20).http_response.json()
    for choice in body["choices"]:
        assert choice.keys() >= {"finish_reason", "index", "message", "logprobs"}
        assert choice["message"].keys() >= {"role", "content", "refusal"}


def test_responses_include_output_text_logprobs(client: openai.OpenAI) -> None:
    include: Any = ["message.output_text.logprobs"]
    response = client.responses.create(model="openai/gpt-4.1-mini", input="Tell me about gateways.",
                                       max_output_tokens=30, top_logprobs=2, include=include)
    part: Any = response.output[-1].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text" and part.logprobs
    assert "".join(lp.token for lp in part.logprobs) == part.text
    assert all(len(lp.top_logprobs) == 2 and lp.logprob <= 0 and lp.bytes for lp in part.logprobs)
    events = list(client.responses.create(model="openai/gpt-4.1-mini", input="Tell me about gateways.",
                                          max_output_tokens=30, top_logprobs=2, include=include, stream=True))
    deltas: Any = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(lp.token for d in deltas for lp in d.logprobs) == "".join(d.delta for d in deltas)
    plain = client.responses.create(model="openai/gpt-4.1-mini", input="hi", max_output_tokens=20)
    assert plain.output[-1].content[0].logprobs == []  # type: ignore[union-attr]


def test_input_items_list_has_the_item_list_shape(client: openai.OpenAI) -> None:
    kept = client.responses.create(model="openai/gpt-4.1-mini", max_output_tokens=16, input=[
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": [{"type": "input_text", "text": "second"}]}])
    raw = client.responses.input_items.with_raw_response.list(kept.id, order="asc")
    body: dict[str, Any] = raw.http_response.json()
    assert body.keys() >= {"object", "data", "has_more", "first_id", "last_id"} and body["object"] == "list"
    assert (body["first_id"], body["last_id"]) == (body["data"][0]["id"], body["data"][-1]["id"])
    kinds = [[part["type"] for part in item["content"]] for item in body["data"]]
    assert kinds == [["input_text"], ["output_text"], ["input_text"]]
    assert all(item["type"] == "message" and item["id"] and item["status"] == "completed" for item in body["data"])
    assert body["data"][1]["content"][0] == {"type": "output_text", "text": "an answer", "annotations": [],
                                             "logprobs": []}
    assert [i.type for i in raw.parse().data] == ["message"] * 3
