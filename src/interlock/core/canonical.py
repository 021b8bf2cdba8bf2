"""The canonical data every layer between the inbound codecs speaks, as ``TypedDict`` shapes.

Canonical is OpenAI Chat Completions: the request, the whole completion and the
stream chunks, plus interlock's extensions where Chat has no field -
``reasoning_content`` and ``thinking_blocks`` on assistant messages,
``cache_control`` on content parts, tools and tool calls, and
``prompt_tokens_details.cache_write_tokens`` in usage. These are types only:
the values stay plain dicts (no conversion, no copy), and keys a shape does not
name pass through untouched. ``Any`` marks only what is free-form by nature: a
JSON Schema, and the extras a vendor sends in its own shape.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, Required, TypeAlias, TypedDict

#: A client's JSON Schema (tool parameters, structured output): free-form by nature.
JsonSchema: TypeAlias = dict[str, Any]


class CacheControl(TypedDict, total=False):
    """A prompt-cache breakpoint (Anthropic's ``{"type": "ephemeral", "ttl": "1h"}``)."""

    type: Required[str]
    ttl: str


# ------------------------------------------------------------------ content parts


class TextPart(TypedDict):
    type: Literal["text"]
    text: str
    cache_control: NotRequired[CacheControl]


class ImageURL(TypedDict):
    #: A URL or a ``data:`` URL.
    url: str
    detail: NotRequired[str]


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL
    cache_control: NotRequired[CacheControl]


class InputAudio(TypedDict):
    data: str
    format: NotRequired[str]


class AudioPart(TypedDict):
    type: Literal["input_audio"]
    input_audio: InputAudio
    cache_control: NotRequired[CacheControl]


class FileRef(TypedDict, total=False):
    """A file: inline (``file_data``, a data URL), by id, or by URL (interlock's extension)."""

    file_data: str
    file_id: str
    file_url: str
    filename: str


class FilePart(TypedDict):
    type: Literal["file"]
    file: FileRef
    cache_control: NotRequired[CacheControl]


class RefusalPart(TypedDict):
    """Only in assistant messages."""

    type: Literal["refusal"]
    refusal: str
    cache_control: NotRequired[CacheControl]


ContentPart: TypeAlias = TextPart | ImagePart | AudioPart | FilePart | RefusalPart
#: A message's ``content``: text, parts, or none (an assistant message with only tool calls).
Content: TypeAlias = str | list[ContentPart] | None


# ------------------------------------------------------------------ tools


class FunctionCall(TypedDict):
    name: str
    #: The arguments as JSON text (possibly partial in a stream delta).
    arguments: str


class ToolCall(TypedDict):
    """A whole tool call on an assistant message."""

    id: str
    type: str  # "function"
    function: FunctionCall
    cache_control: NotRequired[CacheControl]


class FunctionDefinition(TypedDict):
    name: str
    description: NotRequired[str]
    parameters: NotRequired[JsonSchema]
    strict: NotRequired[bool]


class ToolDefinition(TypedDict, total=False):
    """A function tool; an Anthropic server tool (web search...) travels with its own fields, unread."""

    type: Required[str]  # "function", or the server tool's type
    function: FunctionDefinition
    cache_control: CacheControl
    #: A server tool's name (its other fields are the vendor's).
    name: str


class FunctionName(TypedDict):
    name: str


class NamedToolChoice(TypedDict):
    type: str  # "function"
    function: FunctionName


#: ``"none"``, ``"auto"``, ``"required"``, or one named function.
ToolChoice: TypeAlias = str | NamedToolChoice


class JsonSchemaFormat(TypedDict):
    name: str
    schema: NotRequired[JsonSchema]
    description: NotRequired[str]
    strict: NotRequired[bool]


class ResponseFormat(TypedDict):
    type: str  # "text", "json_object" or "json_schema"
    json_schema: NotRequired[JsonSchemaFormat]


# ------------------------------------------------------------------ messages


class ThinkingBlock(TypedDict, total=False):
    """An Anthropic thinking block, verbatim so that its signature round-trips byte for byte."""

    type: Required[str]  # "thinking" or "redacted_thinking"
    thinking: str
    signature: str
    #: A redacted block's encrypted thinking.
    data: str


class Message(TypedDict, total=False):
    """One message of any role; which fields a role carries is the codecs' to check.

    ``role`` is "system", "developer", "user", "assistant", "tool" (or the legacy
    "function"). The ``reasoning*`` fields after ``thinking_blocks`` are vendor
    conventions an answer may use; ``wire/canonical.py`` reads them all.
    """

    role: Required[str]
    content: Content
    name: str
    #: Assistant: the calls it made. Tool: ``tool_call_id`` names the call it answers.
    tool_calls: list[ToolCall]
    tool_call_id: str
    function_call: FunctionCall
    refusal: str | None
    audio: dict[str, Any]
    cache_control: CacheControl
    #: interlock's thinking: the text, and Anthropic's blocks with their signatures.
    reasoning_content: str
    thinking_blocks: list[ThinkingBlock]
    #: A tool result that reports a failure (Anthropic's ``is_error``).
    is_error: bool
    #: vLLM's name for ``reasoning_content``.
    reasoning: str
    #: OpenRouter's reasoning details (its own shapes).
    reasoning_details: list[Any]


# ------------------------------------------------------------------ request


class StreamOptions(TypedDict, total=False):
    include_usage: bool


class ChatRequest(TypedDict, total=False):
    """``POST /v1/chat/completions``'s body, the request every codec produces and every adapter reads."""

    model: Required[str]
    messages: Required[list[Message]]
    #: OpenRouter's fallback models (routing strips them, with ``provider``, before dispatch).
    models: list[str]
    stream: bool
    stream_options: StreamOptions
    max_tokens: int
    max_completion_tokens: int
    n: int
    temperature: float
    top_p: float
    #: Anthropic's ``top_k``, kept by name (interlock's extension).
    top_k: int
    presence_penalty: float
    frequency_penalty: float
    seed: int
    stop: str | list[str]
    logprobs: bool
    top_logprobs: int
    logit_bias: dict[str, float]
    tools: list[ToolDefinition]
    tool_choice: ToolChoice
    parallel_tool_calls: bool
    functions: list[FunctionDefinition]
    function_call: str | FunctionName
    response_format: ResponseFormat
    reasoning_effort: str
    verbosity: str
    modalities: list[str]
    metadata: dict[str, str]
    user: str
    safety_identifier: str
    prompt_cache_key: str
    service_tier: str
    store: bool
    #: Free-form objects OpenAI documents and interlock passes on unread.
    audio: dict[str, Any]
    prediction: dict[str, Any]
    web_search_options: dict[str, Any]


# ------------------------------------------------------------------ usage


class PromptTokensDetails(TypedDict, total=False):
    #: Prompt tokens read from the vendor's cache (included in ``prompt_tokens``).
    cached_tokens: int
    #: Prompt tokens written to the vendor's cache (interlock's extension; included in ``prompt_tokens``).
    cache_write_tokens: int
    #: Of those, written with a one-hour lifetime.
    cache_write_1h_tokens: int
    #: Another adapters' name for ``cache_write_tokens``.
    cache_creation_tokens: int
    audio_tokens: int


class CompletionTokensDetails(TypedDict, total=False):
    reasoning_tokens: int
    audio_tokens: int
    accepted_prediction_tokens: int
    rejected_prediction_tokens: int


class CanonicalUsage(TypedDict, total=False):
    """The OpenAI usage object, with interlock's ``cost`` (USD) and ``estimated`` marker."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails
    #: interlock's price of the request, in USD (never the vendor's).
    cost: float
    #: Present (true) when interlock estimated the counts because the vendor sent none.
    estimated: bool
    #: Conventions some vendors use for what Chat usage lacks: Anthropic's cache writes, DeepSeek's cache hits.
    cache_creation_input_tokens: int
    prompt_cache_hit_tokens: int


# ------------------------------------------------------------------ answers


class TopLogprob(TypedDict, total=False):
    token: str
    logprob: float
    #: The token's UTF-8 bytes (null when it has none of its own).
    bytes: list[int] | None


class TokenLogprob(TypedDict, total=False):
    """``ChatCompletionTokenLogprob``: one token of the answer and its most likely alternatives."""

    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(TypedDict, total=False):
    """``choices[].logprobs``: per-token entries of the content (or of a refusal)."""

    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None


class Choice(TypedDict, total=False):
    index: int
    message: Message
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None
    #: The stop sequence that ended the answer, when the vendor says (vLLM says ``stop_reason``, maybe a token id).
    stop_sequence: str | None
    stop_reason: Any


class ChatCompletion(TypedDict, total=False):
    """A whole answer (``chat.completion``)."""

    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: CanonicalUsage
    service_tier: str | None
    system_fingerprint: str | None


class FunctionCallDelta(TypedDict, total=False):
    name: str
    arguments: str


class ToolCallDelta(TypedDict, total=False):
    """A piece of a tool call in a stream: the first piece of a call carries its id and name."""

    index: int
    id: str
    type: str
    function: FunctionCallDelta


class Delta(TypedDict, total=False):
    role: str
    content: str | None
    refusal: str | None
    tool_calls: list[ToolCallDelta]
    reasoning_content: str
    thinking_blocks: list[ThinkingBlock]
    #: Vendor conventions for thinking (see :class:`Message`).
    reasoning: str
    reasoning_details: list[Any]


class ChunkChoice(TypedDict, total=False):
    index: int
    delta: Delta
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None
    stop_sequence: str | None
    stop_reason: Any


class ChatCompletionChunk(TypedDict, total=False):
    """One stream payload (``chat.completion.chunk``); the last one carries ``usage``."""

    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CanonicalUsage | None
    service_tier: str | None
    #: A vendor's in-stream error object (its own shape): the stream failed.
    error: Any
