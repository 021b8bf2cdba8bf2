"""The fields Anthropic's API always sends, per the TypeScript SDK's types.

Read from anthropics/anthropic-sdk-typescript at bfa9197f (2026-08-19):
src/resources/messages/messages.ts and src/resources/shared.ts. A field declared
``name: T | null`` (no ``?``) is always present, ``null`` when it has no value.
The Python SDK marks those ``Optional[...] = None``, which hides an absent field,
so the tests check presence here as well as parsing with the SDK. Extra fields
(interlock's ``usage.cost``, ``usage.estimated``) are allowed.
"""

from __future__ import annotations

from typing import Any

from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from pydantic import TypeAdapter

_EVENT: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)

MESSAGE = ("id", "container", "content", "model", "role", "stop_details", "stop_reason", "stop_sequence", "type",
           "usage")
USAGE = ("cache_creation", "cache_creation_input_tokens", "cache_read_input_tokens", "inference_geo", "input_tokens",
         "output_tokens", "output_tokens_details", "server_tool_use", "service_tier")
CACHE_CREATION = ("ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens")
DELTA_USAGE = ("cache_creation_input_tokens", "cache_read_input_tokens", "input_tokens", "output_tokens",
               "output_tokens_details", "server_tool_use")
MESSAGE_DELTA = ("container", "stop_details", "stop_reason", "stop_sequence")
REFUSAL_DETAILS = ("category", "explanation", "type")
BLOCKS = {
    "text": ("citations", "text", "type"),
    "tool_use": ("id", "caller", "input", "name", "type"),
    "thinking": ("signature", "thinking", "type"),
    "redacted_thinking": ("data", "type"),
}
ERROR_RESPONSE = ("error", "request_id", "type")
ERROR_OBJECT = ("message", "type")
#: ``ErrorType`` (shared.ts).
ERROR_TYPES = {"invalid_request_error", "authentication_error", "permission_error", "not_found_error",
               "rate_limit_error", "timeout_error", "overloaded_error", "api_error", "billing_error"}


def _has(obj: Any, fields: tuple[str, ...], where: str) -> None:
    assert isinstance(obj, dict), f"{where}: expected an object, got {obj!r}"
    missing = [f for f in fields if f not in obj]
    assert not missing, f"{where}: missing {missing} in {obj!r}"


def check_block(block: Any, where: str) -> None:
    _has(block, ("type",), where)
    fields = BLOCKS.get(block["type"])
    assert fields is not None, f"{where}: unexpected block type {block['type']!r}"
    _has(block, fields, where)
    if block["type"] == "tool_use":
        assert block["caller"] == {"type": "direct"}, where


def check_usage(usage: Any, where: str) -> None:
    _has(usage, USAGE, where)
    if usage["cache_creation"] is not None:
        _has(usage["cache_creation"], CACHE_CREATION, f"{where}.cache_creation")
    assert usage["service_tier"] in (None, "standard", "priority", "batch"), where


def check_message(message: Any, where: str = "message") -> None:
    """Present per the TypeScript types, and valid for the Python SDK's pydantic model (strict validation)."""
    Message.model_validate(message)
    _has(message, MESSAGE, where)
    assert message["type"] == "message" and message["role"] == "assistant", where
    for i, block in enumerate(message["content"]):
        check_block(block, f"{where}.content.{i}")
    check_usage(message["usage"], f"{where}.usage")
    if message["stop_details"] is not None:
        _has(message["stop_details"], REFUSAL_DETAILS, f"{where}.stop_details")


def check_error(body: Any, where: str = "error") -> None:
    ErrorResponse.model_validate(body)
    _has(body, ERROR_RESPONSE, where)
    assert body["type"] == "error", where
    _has(body["error"], ERROR_OBJECT, f"{where}.error")
    assert body["error"]["type"] in ERROR_TYPES, f"{where}.error.type: {body['error']['type']!r}"


def check_event(payload: Any) -> None:
    """One stream event's payload, by its ``type`` (``ping`` and ``error`` are not in the SDK's event union)."""
    kind = payload.get("type")
    if kind not in ("ping", "error"):
        _EVENT.validate_python(payload)
    if kind == "message_start":
        check_message(payload["message"], "message_start.message")
    elif kind == "content_block_start":
        check_block(payload["content_block"], "content_block_start.content_block")
        _has(payload, ("index",), kind)
    elif kind == "message_delta":
        _has(payload["delta"], MESSAGE_DELTA, "message_delta.delta")
        _has(payload["usage"], DELTA_USAGE, "message_delta.usage")
    elif kind == "error":
        check_error(payload, "error event")
    else:
        assert kind in ("content_block_delta", "content_block_stop", "message_stop", "ping"), kind


def check_count(body: Any) -> None:
    """``MessageTokensCount``: exactly ``input_tokens``."""
    MessageTokensCount.model_validate(body)
    assert isinstance(body, dict) and list(body) == ["input_tokens"], body
