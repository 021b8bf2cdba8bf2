"""Cohere v2 chat ``usage`` → :class:`~interlock.core.pricing.Usage`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.core.pricing import Usage
from interlock.core.usage import count_field, object_field


def usage_from_cohere(usage: Mapping[str, Any]) -> Usage:
    """Parse Cohere v2 chat ``usage``.

    ``billed_units`` holds what Cohere charges for; ``tokens`` also counts the
    prompt template Cohere adds, so it is used only when ``billed_units`` is
    absent. Cohere bills cached prompt tokens at the full input rate, so
    ``cached_tokens`` stays inside ``input_tokens``.
    """
    billed = object_field(usage, "billed_units")
    tokens = object_field(usage, "tokens")
    source = billed if billed and ("input_tokens" in billed or "output_tokens" in billed) else tokens
    return Usage(input_tokens=count_field(source, "input_tokens"), output_tokens=count_field(source, "output_tokens"))
