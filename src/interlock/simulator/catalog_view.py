"""The slice of :mod:`interlock.catalog` the simulator relies on.

The simulator must count tokens exactly like the cost engine, so it calls the
catalog's own ``count_tokens`` / ``estimate_chat_tokens`` instead of keeping a
tokenizer of its own; these wrappers are the only place it does so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.catalog import Catalog, count_tokens, estimate_chat_tokens, load_catalog
from interlock.core.model import Model


def default_catalog() -> Catalog:
    """The packaged catalog."""
    return load_catalog()


def count_text(text: str, model: Model | None) -> int:
    """Tokens in ``text`` as the cost engine counts them."""
    return count_tokens(text, model)


def count_chat(request: Mapping[str, Any], model: Model | None) -> int:
    """Prompt tokens of an OpenAI-shaped chat request as the cost engine estimates them."""
    return estimate_chat_tokens(request, model)


def output_price(model: Model) -> int | None:
    """Micro-USD per 1M output tokens at the reference vendor, when the catalog knows it."""
    route = model.reference_route
    return None if route is None else route.price.output
