"""Usage objects → :class:`~interlock.core.pricing.Usage`: the canonical parser and the field readers.

The canonical usage object is OpenAI's (Chat Completions, or the Responses
API's ``input_tokens``/``output_tokens``): :func:`usage_from_openai` reads it
for settle, the simulator and every OpenAI-compatible vendor, and is the
inverse of :meth:`Usage.to_openai`. Each native vendor's own parser lives in
its folder under ``interlock.vendors`` and reads fields with
:func:`count_field` and :func:`object_field`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.core.pricing import Usage


def count_field(obj: Mapping[str, Any] | None, key: str) -> int:
    """A non-negative int field, tolerating absent keys, nulls and float-typed counts."""
    if not obj:
        return 0
    value = obj.get(key)
    if type(value) is int:  # the usual case (bool is not int here)
        return value if value > 0 else 0
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return max(int(value), 0)
    raise ValueError(f"usage field {key!r} is not a number: {value!r}")


def object_field(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if not obj:
        return None
    value = obj.get(key)
    if type(value) is dict:  # what JSON parsing gives; the ABC check below is slower
        return value
    return value if isinstance(value, Mapping) else None


def usage_from_openai(usage: Mapping[str, Any]) -> Usage:
    """Parse an OpenAI usage object (Chat Completions or Responses API shape).

    Chat Completions: ``prompt_tokens`` INCLUDES ``prompt_tokens_details.cached_tokens``
    and ``.audio_tokens``; ``completion_tokens`` includes reasoning and audio
    tokens. The Responses API uses ``input_tokens``/``output_tokens`` with the
    same inclusive semantics. Also used for OpenAI-compatible vendors (Groq,
    xAI, DeepSeek, Together, Fireworks, OpenRouter, Perplexity...); DeepSeek's
    ``prompt_cache_hit_tokens`` and Perplexity's ``citation_tokens`` /
    ``num_search_queries`` are understood too. For a stream, pass the ``usage``
    of the final chunk (sent when ``stream_options.include_usage`` is set).
    """
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt = count_field(usage, "prompt_tokens")
        completion = count_field(usage, "completion_tokens")
        pdet = object_field(usage, "prompt_tokens_details")
        cdet = object_field(usage, "completion_tokens_details")
    else:
        prompt = count_field(usage, "input_tokens")
        completion = count_field(usage, "output_tokens")
        pdet = object_field(usage, "input_tokens_details")
        cdet = object_field(usage, "output_tokens_details")
    cached = count_field(pdet, "cached_tokens") or count_field(usage, "prompt_cache_hit_tokens")
    cached = min(cached, prompt)
    # Not OpenAI's own field: interlock's translating adapters (Anthropic, Bedrock) report
    # cache writes here, inside prompt_tokens, so they are billed at the cache-write rate.
    written = min(count_field(pdet, "cache_write_tokens"), prompt - cached)
    in_audio = min(count_field(pdet, "audio_tokens"), prompt - cached - written)
    reasoning = min(count_field(cdet, "reasoning_tokens"), completion)
    out_audio = min(count_field(cdet, "audio_tokens"), completion - reasoning)
    # Positional, in field order (input, cache read, cache write, output, reasoning, input audio,
    # output audio, estimated, citations, requests, 1-hour cache writes): measurably cheaper on the hot path.
    return Usage(prompt - cached - written - in_audio, cached, written, completion, reasoning, in_audio, out_audio,
                 False, count_field(usage, "citation_tokens"), count_field(usage, "num_search_queries"),
                 min(count_field(pdet, "cache_write_1h_tokens"), written) if written else 0)
