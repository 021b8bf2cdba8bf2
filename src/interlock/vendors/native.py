"""Which adapter class serves each native vendor type (``VendorSpec.type``).

One table, so the registry stays a single lookup and a new wire format is one
line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from interlock.config import VendorConfig
from interlock.core.vendor import ChatAdapter
from interlock.vendors.anthropic.chat import AnthropicAdapter
from interlock.vendors.bedrock.chat import BedrockAdapter
from interlock.vendors.cohere.chat import CohereAdapter
from interlock.vendors.gemini.chat import GeminiAdapter
from interlock.vendors.transport import Transport
from interlock.vendors.vertex.chat import VertexAdapter

NATIVE_ADAPTERS: Mapping[str, Callable[[VendorConfig, Transport], ChatAdapter]] = MappingProxyType({
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "bedrock": BedrockAdapter,
    "cohere": CohereAdapter,
    "vertex": VertexAdapter,
})
