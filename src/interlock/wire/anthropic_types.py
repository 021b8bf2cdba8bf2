"""The Anthropic Messages answer shapes interlock writes, as ``TypedDict``s.

``Message``, ``Usage`` and the content blocks as the TypeScript SDK declares
them (src/resources/messages/messages.ts): every field it declares without
``?`` is always written, ``null`` when interlock has no value. Thinking blocks
are the canonical :class:`~interlock.core.canonical.ThinkingBlock`, Anthropic's
own shape carried verbatim. ``cost`` and ``estimated`` are interlock's extras.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

from interlock.core.canonical import ThinkingBlock


class CacheCreation(TypedDict):
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int


class AnthropicUsage(TypedDict):
    """``Usage``: ``input_tokens`` excludes cache reads and writes."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation: CacheCreation
    output_tokens: int
    #: ``{"thinking_tokens": n}`` when the vendor counted them.
    output_tokens_details: dict[str, int] | None
    server_tool_use: None
    service_tier: str | None
    inference_geo: None
    cost: NotRequired[float]
    estimated: NotRequired[bool]


class TextBlock(TypedDict):
    type: Literal["text"]
    text: str
    citations: None


class Caller(TypedDict):
    type: str  # "direct": the model called the tool itself


class ToolUseBlock(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    #: The tool's arguments: a JSON object of the tool's own making.
    input: dict[str, Any]
    caller: Caller


ContentBlock: TypeAlias = TextBlock | ToolUseBlock | ThinkingBlock


class StopDetails(TypedDict):
    """``RefusalStopDetails`` (interlock knows no policy category)."""

    type: Literal["refusal"]
    category: None
    explanation: str | None


class AnthropicMessage(TypedDict):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    stop_details: StopDetails | None
    container: None
    usage: AnthropicUsage
