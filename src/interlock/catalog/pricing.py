"""Each vendor's usage object → one :class:`~interlock.core.pricing.Usage`.

Every vendor reports usage differently (OpenAI's ``prompt_tokens`` *includes*
cached tokens, Anthropic's ``input_tokens`` *excludes* them, Gemini splits
thoughts from candidates...). These parsers map each onto disjoint buckets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.core.pricing import Usage


def _int(obj: Mapping[str, Any] | None, key: str) -> int:
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


def _obj(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
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
        prompt = _int(usage, "prompt_tokens")
        completion = _int(usage, "completion_tokens")
        pdet = _obj(usage, "prompt_tokens_details")
        cdet = _obj(usage, "completion_tokens_details")
    else:
        prompt = _int(usage, "input_tokens")
        completion = _int(usage, "output_tokens")
        pdet = _obj(usage, "input_tokens_details")
        cdet = _obj(usage, "output_tokens_details")
    cached = _int(pdet, "cached_tokens") or _int(usage, "prompt_cache_hit_tokens")
    cached = min(cached, prompt)
    # Not OpenAI's own field: interlock's translating adapters (Anthropic, Bedrock) report
    # cache writes here, inside prompt_tokens, so they are billed at the cache-write rate.
    written = min(_int(pdet, "cache_write_tokens"), prompt - cached)
    in_audio = min(_int(pdet, "audio_tokens"), prompt - cached - written)
    reasoning = min(_int(cdet, "reasoning_tokens"), completion)
    out_audio = min(_int(cdet, "audio_tokens"), completion - reasoning)
    # Positional, in field order (input, cache read, cache write, output, reasoning, input audio,
    # output audio, estimated, citations, requests, 1-hour cache writes): measurably cheaper on the hot path.
    return Usage(prompt - cached - written - in_audio, cached, written, completion, reasoning, in_audio, out_audio,
                 False, _int(usage, "citation_tokens"), _int(usage, "num_search_queries"),
                 min(_int(pdet, "cache_write_1h_tokens"), written) if written else 0)


def usage_from_anthropic(*usages: Mapping[str, Any]) -> Usage:
    """Parse Anthropic Messages usage: ``input_tokens`` EXCLUDES cache reads and writes.

    ``cache_creation_input_tokens`` and ``cache_read_input_tokens`` are separate
    buckets (``cache_creation.ephemeral_1h_input_tokens`` is the 1-hour part of the writes); ``output_tokens`` includes extended-thinking tokens (Anthropic does
    not report the thinking part separately). For a stream pass every usage seen
    in order, e.g. ``message_start.message.usage`` then ``message_delta.usage``:
    the counts are cumulative, so later non-null values win.
    """
    merged: dict[str, Any] = {}
    for usage in usages:
        merged.update({k: v for k, v in usage.items() if v is not None})
    server_tools = _obj(merged, "server_tool_use")
    written = _int(merged, "cache_creation_input_tokens")
    return Usage(
        input_tokens=_int(merged, "input_tokens"),
        cache_read_tokens=_int(merged, "cache_read_input_tokens"),
        cache_write_tokens=written,
        output_tokens=_int(merged, "output_tokens"),
        requests=_int(server_tools, "web_search_requests"),
        # ``cache_creation`` splits the writes by lifetime; the 1-hour ones cost more.
        cache_write_1h_tokens=min(_int(_obj(merged, "cache_creation"), "ephemeral_1h_input_tokens"), written),
    )


def _modality_count(details: Any, modality: str) -> int:
    if not isinstance(details, list):
        return 0
    return sum(
        _int(item, "tokenCount")
        for item in details
        if isinstance(item, Mapping) and str(item.get("modality", "")).upper() == modality
    )


def usage_from_gemini(usage_metadata: Mapping[str, Any]) -> Usage:
    """Parse Gemini / Vertex ``usageMetadata``.

    ``promptTokenCount`` INCLUDES ``cachedContentTokenCount``; tokens the model
    spent in tool use (``toolUsePromptTokenCount``, e.g. grounding) are billed as
    input. ``thoughtsTokenCount`` is NOT part of ``candidatesTokenCount`` and is
    billed as output. Audio prompt tokens (``promptTokensDetails`` with modality
    AUDIO, minus the cached audio in ``cacheTokensDetails``) are billed at the
    audio input rate.
    """
    prompt = _int(usage_metadata, "promptTokenCount")
    cached = min(_int(usage_metadata, "cachedContentTokenCount"), prompt)
    audio = _modality_count(usage_metadata.get("promptTokensDetails"), "AUDIO")
    cached_audio = _modality_count(usage_metadata.get("cacheTokensDetails"), "AUDIO")
    uncached_audio = min(max(audio - cached_audio, 0), prompt - cached)
    tool_prompt = _int(usage_metadata, "toolUsePromptTokenCount")
    thoughts = _int(usage_metadata, "thoughtsTokenCount")
    candidates = _int(usage_metadata, "candidatesTokenCount")
    out_audio = _modality_count(usage_metadata.get("candidatesTokensDetails"), "AUDIO")
    return Usage(
        input_tokens=prompt - cached - uncached_audio + tool_prompt,
        cache_read_tokens=cached,
        input_audio_tokens=uncached_audio,
        output_tokens=candidates + thoughts,
        reasoning_tokens=thoughts,
        output_audio_tokens=min(out_audio, candidates),
    )


def usage_from_bedrock(usage: Mapping[str, Any]) -> Usage:
    """Parse Bedrock Converse / ConverseStream ``usage``.

    ``inputTokens`` EXCLUDES ``cacheReadInputTokens`` and ``cacheWriteInputTokens``
    (``totalTokens`` is the sum of all four). Should a response ever report the
    inclusive form (``totalTokens == inputTokens + outputTokens`` while cache
    counts are non-zero), the cache counts are subtracted instead, so neither
    reading double-counts.
    """
    inp = _int(usage, "inputTokens")
    out = _int(usage, "outputTokens")
    read = _int(usage, "cacheReadInputTokens")
    write = _int(usage, "cacheWriteInputTokens")
    total = usage.get("totalTokens")
    if (read or write) and isinstance(total, int) and total == inp + out and inp >= read + write:
        inp -= read + write
    return Usage(input_tokens=inp, cache_read_tokens=read, cache_write_tokens=write, output_tokens=out)


def usage_from_cohere(usage: Mapping[str, Any]) -> Usage:
    """Parse Cohere v2 chat ``usage``.

    ``billed_units`` holds what Cohere charges for; ``tokens`` also counts the
    prompt template Cohere adds, so it is used only when ``billed_units`` is
    absent. Cohere bills cached prompt tokens at the full input rate, so
    ``cached_tokens`` stays inside ``input_tokens``.
    """
    billed = _obj(usage, "billed_units")
    tokens = _obj(usage, "tokens")
    source = billed if billed and ("input_tokens" in billed or "output_tokens" in billed) else tokens
    return Usage(input_tokens=_int(source, "input_tokens"), output_tokens=_int(source, "output_tokens"))
