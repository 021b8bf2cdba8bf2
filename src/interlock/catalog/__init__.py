"""Model catalog, exact cost accounting and offline token counting.

Everything other packages need is re-exported here; the submodules are
``catalog`` (schema, lookup, config overrides), ``pricing`` (vendor usage
parsers; the money model is :mod:`interlock.core.pricing`), ``tokens`` (offline token counting), ``render`` (API and
CLI views).
"""

from interlock.catalog.catalog import CAPABILITIES, Catalog, load_catalog, load_catalog_file
from interlock.catalog.pricing import (
    usage_from_anthropic,
    usage_from_bedrock,
    usage_from_cohere,
    usage_from_gemini,
    usage_from_openai,
)
from interlock.catalog.tokens import count_tokens, estimate_chat_tokens, image_tokens
from interlock.catalog.tokens import warm as warm_tokenizers

__all__ = [
    "CAPABILITIES",
    "Catalog",
    "count_tokens",
    "estimate_chat_tokens",
    "image_tokens",
    "load_catalog",
    "load_catalog_file",
    "usage_from_anthropic",
    "usage_from_bedrock",
    "usage_from_cohere",
    "usage_from_gemini",
    "usage_from_openai",
    "warm_tokenizers",
]
