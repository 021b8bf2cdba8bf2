"""OpenAI-side shapes the spec requires of interlock's translated answers (issue 15).

The OpenAPI document marks some fields required *and* nullable (``message.refusal``,
``choices[].logprobs``): an answer must carry them even when null. These tests
decode every native vendor's answer and check those fields directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.vendors.anthropic import chat as anthropic
from interlock.vendors.bedrock import chat as bedrock
from interlock.vendors.cohere import chat as cohere
from interlock.vendors.gemini import chat as gemini

FIXTURES = Path(__file__).parent / "mock_vendors" / "fixtures"

#: ChatCompletionResponseMessage.required and the choice's required keys in CreateChatCompletionResponse.
MESSAGE_REQUIRED = {"role", "content", "refusal"}
CHOICE_REQUIRED = {"finish_reason", "index", "message", "logprobs"}


def _fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def _answers() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("anthropic", anthropic.decode_message(_fixture("anthropic_message_tools.json"), None)),
        ("anthropic-refusal", anthropic.decode_message(
            {"id": "msg_1", "model": "claude-x", "stop_reason": "refusal",
             "content": [{"type": "text", "text": "Here is how to"}],
             "usage": {"input_tokens": 3, "output_tokens": 4}}, None)),
        ("bedrock", bedrock.decode_response(_fixture("bedrock_converse_tools.json"), None, "m")),
        ("gemini", gemini.decode_response(_fixture("gemini_response_tools.json"))),
        ("gemini-blocked", gemini.decode_response({"promptFeedback": {"blockReason": "SAFETY"}})),
        ("cohere", cohere.decode_response(
            {"id": "c1", "finish_reason": "COMPLETE",
             "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]}})),
    ]


@pytest.mark.parametrize(("vendor", "answer"), _answers(), ids=[name for name, _ in _answers()])
def test_translated_answers_carry_every_required_nullable_field(vendor: str, answer: dict[str, Any]) -> None:
    assert answer["object"] == "chat.completion"
    assert {"id", "choices", "created", "model", "object"} <= answer.keys()
    for choice in answer["choices"]:
        assert choice.keys() >= CHOICE_REQUIRED, vendor
        message = choice["message"]
        assert message.keys() >= MESSAGE_REQUIRED, vendor
        assert message["role"] == "assistant"
        # No native vendor sends a refusal message; a cut-off answer is a content_filter finish.
        assert message["refusal"] is None
        assert choice["finish_reason"] in ("stop", "length", "tool_calls", "content_filter")


def test_anthropic_refusal_stop_is_a_content_filter_finish_with_the_partial_text() -> None:
    answer = dict(_answers())["anthropic-refusal"]
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == "Here is how to" and choice["message"]["refusal"] is None


def test_input_items_are_listed_as_item_resources() -> None:
    from interlock.api.responses import input_item_resource

    stored = [{"role": "user", "content": "hi"},
              {"type": "message", "role": "assistant", "content": "earlier answer"},
              {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
              {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
              {"type": "function_call_output", "call_id": "c1", "output": "42"}]
    items = [input_item_resource(item, f"in_{i}") for i, item in enumerate(stored)]
    assert items[0] == {"id": "in_0", "type": "message", "role": "user", "status": "completed",
                        "content": [{"type": "input_text", "text": "hi"}]}
    assert items[1]["content"] == [{"type": "output_text", "text": "earlier answer", "annotations": [],
                                    "logprobs": []}]
    assert items[2]["content"] == [{"type": "input_text", "text": "rules"}] and items[2]["status"] == "completed"
    for item in items:
        assert {"id", "type"} <= item.keys()
        if item["type"] != "message":
            assert item["status"] == "completed"


def test_responses_echo_function_tools_with_strict_and_parameters() -> None:
    from interlock.wire.responses import parse_responses_request

    request = parse_responses_request({"model": "m", "input": "hi", "tools": [
        {"type": "function", "name": "w"},
        {"type": "function", "name": "v", "parameters": {"type": "object"}, "strict": True}]})
    # FunctionTool requires strict and parameters (nullable): present even when the request left them out.
    assert request.meta.echo["tools"] == [
        {"type": "function", "name": "w", "strict": None, "parameters": None},
        {"type": "function", "name": "v", "parameters": {"type": "object"}, "strict": True}]
