"""A vendor request reduced to what the simulator needs to answer it.

Each wire format (OpenAI, Anthropic, Gemini) parses its own body into a
:class:`SimRequest`; generation, usage and caching then work the same way for
all three, which keeps the formats' behaviour consistent (same text, same
token counts for the same conversation). ``count_request`` is the request
rewritten as an OpenAI chat request because that is what the catalog's
``estimate_chat_tokens`` counts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from interlock.simulator.anthropic_cache import CacheUnit

ToolChoice = Literal["auto", "none", "required"] | tuple[Literal["function"], str]
Reasoning = Literal["off", "minimal", "low", "medium", "high"]


class BadRequest(Exception):
    """The body is not a valid request for this vendor: rendered as the vendor's 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class ToolDef:
    name: str
    parameters: Any  # a JSON Schema (mapping or boolean)


@dataclass(slots=True)
class SimRequest:
    model: str
    count_request: dict[str, Any]
    segments: list[tuple[bytes, str]]  # (canonical bytes, text) per prompt unit, for automatic prefix caching
    last_role: str
    prompt_text: str
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    n: int = 1
    tools: list[ToolDef] = field(default_factory=list)
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    response_schema: Any = None
    json_mode: bool = False
    reasoning: Reasoning | None = None  # None: the model's default
    thinking_budget: int | None = None
    show_thinking: bool = False  # Anthropic thinking blocks / Gemini thought parts
    seed_material: bytes = b""
    #: Anthropic: the prompt's pieces and blocks in render order, with their markers (explicit
    #: caching; empty without a marker); None: the wire caches automatically by ``segments``.
    cache_units: list[CacheUnit] | None = None
    extra_prompt_tokens: int = 0  # documents/files, which the catalog's chat estimate does not count
    logprobs: bool = False  # OpenAI: return token log probabilities
    top_logprobs: int = 0  # OpenAI: how many most likely tokens to list per position

    def content_seed(self) -> int:
        """The seed of everything generated for this request (not of latency or faults)."""
        return int.from_bytes(hashlib.blake2b(self.seed_material, digest_size=8).digest(), "big")


def canonical(value: Any) -> bytes:
    """Stable bytes for hashing: sorted keys, no whitespace."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def seed_material(body: dict[str, Any], ignore: tuple[str, ...]) -> bytes:
    """The request minus transport-level switches, so a stream and a plain call answer alike."""
    return canonical({k: v for k, v in body.items() if k not in ignore})


def expect_int(body: dict[str, Any], key: str, *, lo: int, hi: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"Invalid type for '{key}': expected an integer, but got {type(value).__name__}.", key)
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise BadRequest(f"Invalid '{key}': must be {bound}, got {value}.", key)
    return value


def text_of(content: Any) -> str:
    """Best-effort plain text of a message content (string or parts), for topics and cache units."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(text_of(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


PDF_TOKENS_PER_PAGE = 1500  # text plus page image, the order of magnitude vendors bill per PDF page
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-z])")


def document_tokens(data: str | None, media_type: str) -> int:
    """Prompt tokens of an attached document (base64 ``data``; None when sent by reference).

    PDFs are billed per page by vendors, so pages are counted in the file; plain
    text is counted at about four bytes per token.
    """
    if not data:
        return PDF_TOKENS_PER_PAGE
    if data.startswith("data:"):
        media_type = data[5 : data.find(";")] if ";" in data else media_type
        data = data.partition(",")[2]
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return PDF_TOKENS_PER_PAGE
    if media_type == "application/pdf" or raw.startswith(b"%PDF"):
        return max(1, len(_PDF_PAGE.findall(raw))) * PDF_TOKENS_PER_PAGE
    return max(1, len(raw) // 4)
