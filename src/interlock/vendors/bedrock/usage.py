"""Bedrock Converse ``usage`` → :class:`~interlock.core.pricing.Usage`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.core.pricing import Usage
from interlock.core.usage import count_field


def usage_from_bedrock(usage: Mapping[str, Any]) -> Usage:
    """Parse Bedrock Converse / ConverseStream ``usage``.

    ``inputTokens`` EXCLUDES ``cacheReadInputTokens`` and ``cacheWriteInputTokens``
    (``totalTokens`` is the sum of all four). Should a response ever report the
    inclusive form (``totalTokens == inputTokens + outputTokens`` while cache
    counts are non-zero), the cache counts are subtracted instead, so neither
    reading double-counts.
    """
    inp = count_field(usage, "inputTokens")
    out = count_field(usage, "outputTokens")
    read = count_field(usage, "cacheReadInputTokens")
    write = count_field(usage, "cacheWriteInputTokens")
    total = usage.get("totalTokens")
    if (read or write) and isinstance(total, int) and total == inp + out and inp >= read + write:
        inp -= read + write
    return Usage(input_tokens=inp, cache_read_tokens=read, cache_write_tokens=write, output_tokens=out)
