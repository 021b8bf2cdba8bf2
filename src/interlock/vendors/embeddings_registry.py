"""Which embeddings adapter serves each vendor type, or None where the vendor has no embeddings API.

Anthropic publishes no embeddings endpoint. The registry attaches the result to
the vendor's runtime, so the embeddings handler can tell "this vendor cannot
embed" before calling it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from interlock.config import VendorConfig
from interlock.core.vendor import EmbeddingAdapter
from interlock.vendors.bedrock.embeddings import BedrockEmbedder
from interlock.vendors.cohere.embeddings import CohereEmbedder
from interlock.vendors.gemini.embeddings import GeminiEmbedder
from interlock.vendors.openai_compat.embeddings import OpenAICompatEmbedder
from interlock.vendors.transport import Transport
from interlock.vendors.vertex.embeddings import VertexEmbedder

EMBEDDERS: Mapping[str, Callable[[VendorConfig, Transport], EmbeddingAdapter]] = MappingProxyType({
    "openai": OpenAICompatEmbedder,
    "simulator": OpenAICompatEmbedder,
    "gemini": GeminiEmbedder,
    "bedrock": BedrockEmbedder,
    "cohere": CohereEmbedder,
    "vertex": VertexEmbedder,
})


def build_embedder(vendor: VendorConfig, transport: Transport) -> EmbeddingAdapter | None:
    factory = EMBEDDERS.get(vendor.spec.type)
    return factory(vendor, transport) if factory is not None else None
