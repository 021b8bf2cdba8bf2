"""Model catalog, exact cost accounting and offline token counting.

Everything other packages need is re-exported here; the submodules are
``catalog`` (schema, lookup, config overrides), ``pricing`` (usage
normalisation and cost), ``tokens`` (offline token counting), ``render`` (API and
CLI views) and ``compile`` (build-time models.dev compiler).
"""

from interlock.catalog.catalog import CAPABILITIES, Catalog, Model, Route, load_catalog, load_catalog_file
from interlock.catalog.pricing import (
    Cost,
    Price,
    PriceTier,
    Usage,
    cost_of,
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
    "Cost",
    "Model",
    "Price",
    "PriceTier",
    "Route",
    "Usage",
    "cost_of",
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
