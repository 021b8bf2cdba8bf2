"""Gemini's ``usageMetadata`` → :class:`~interlock.core.pricing.Usage` (also Gemini on Vertex AI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.core.pricing import Usage
from interlock.core.usage import count_field


def _modality_count(details: Any, modality: str) -> int:
    if not isinstance(details, list):
        return 0
    return sum(
        count_field(item, "tokenCount")
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
    prompt = count_field(usage_metadata, "promptTokenCount")
    cached = min(count_field(usage_metadata, "cachedContentTokenCount"), prompt)
    audio = _modality_count(usage_metadata.get("promptTokensDetails"), "AUDIO")
    cached_audio = _modality_count(usage_metadata.get("cacheTokensDetails"), "AUDIO")
    uncached_audio = min(max(audio - cached_audio, 0), prompt - cached)
    tool_prompt = count_field(usage_metadata, "toolUsePromptTokenCount")
    thoughts = count_field(usage_metadata, "thoughtsTokenCount")
    candidates = count_field(usage_metadata, "candidatesTokenCount")
    out_audio = _modality_count(usage_metadata.get("candidatesTokensDetails"), "AUDIO")
    return Usage(
        input_tokens=prompt - cached - uncached_audio + tool_prompt,
        cache_read_tokens=cached,
        input_audio_tokens=uncached_audio,
        output_tokens=candidates + thoughts,
        reasoning_tokens=thoughts,
        output_audio_tokens=min(out_audio, candidates),
    )
