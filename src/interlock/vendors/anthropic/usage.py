"""Anthropic's usage object → :class:`~interlock.core.pricing.Usage` (also Claude on Vertex AI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.core.pricing import Usage
from interlock.core.usage import count_field, object_field


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
    server_tools = object_field(merged, "server_tool_use")
    written = count_field(merged, "cache_creation_input_tokens")
    return Usage(
        input_tokens=count_field(merged, "input_tokens"),
        cache_read_tokens=count_field(merged, "cache_read_input_tokens"),
        cache_write_tokens=written,
        output_tokens=count_field(merged, "output_tokens"),
        requests=count_field(server_tools, "web_search_requests"),
        # ``cache_creation`` splits the writes by lifetime; the 1-hour ones cost more.
        cache_write_1h_tokens=min(count_field(object_field(merged, "cache_creation"), "ephemeral_1h_input_tokens"), written),
    )
