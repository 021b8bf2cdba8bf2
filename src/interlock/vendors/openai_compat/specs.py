"""The built-in OpenAI-compatible vendors, described as data: one line each.

These vendors speak the OpenAI Chat Completions dialect; what differs between
them is a base URL, how the key is sent, and a few parameter quirks. Each is a
:class:`VendorSpec`; the one OpenAI-compatible adapter reads it. A vendor is
*live* when its credential is present (its environment variable is set, or the
config names a key), or - for local servers that need no key - when the config
lists it. A new one is a line in :data:`SPECS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from interlock.core.vendor import Quirks, VendorSpec
from interlock.vendors.declaration import CatalogIds

_OPENAI_OLD = Quirks(max_tokens_param="max_tokens")
#: Groq's API refuses logprobs.
_NO_LOGPROBS = Quirks(logprobs=False)

SPECS: tuple[VendorSpec, ...] = (
    VendorSpec("openai", "OpenAI", "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",),
               docs="https://platform.openai.com/docs/api-reference/chat"),
    VendorSpec("azure", "Azure OpenAI", "openai", None, ("AZURE_OPENAI_API_KEY",), auth="api-key",
               base_url_env="AZURE_OPENAI_ENDPOINT",
               docs="https://learn.microsoft.com/azure/ai-foundry/openai/reference"),
    VendorSpec("groq", "Groq", "openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",),
               quirks=_NO_LOGPROBS, docs="https://console.groq.com/docs/api-reference"),
    VendorSpec("mistral", "Mistral", "openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",),
               quirks=Quirks(max_tokens_param="max_tokens", stream_options=False, logprobs=False),
               docs="https://docs.mistral.ai/api/"),
    VendorSpec("deepseek", "DeepSeek", "openai", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",),
               quirks=_OPENAI_OLD, docs="https://api-docs.deepseek.com/"),
    VendorSpec("xai", "xAI", "openai", "https://api.x.ai/v1", ("XAI_API_KEY",),
               docs="https://docs.x.ai/docs/api-reference"),
    VendorSpec("together", "Together AI", "openai", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",),
               quirks=_OPENAI_OLD, docs="https://docs.together.ai/reference/chat-completions-1"),
    VendorSpec("fireworks", "Fireworks AI", "openai", "https://api.fireworks.ai/inference/v1",
               ("FIREWORKS_API_KEY",), quirks=_OPENAI_OLD,
               docs="https://docs.fireworks.ai/api-reference/post-chatcompletions"),
    VendorSpec("cerebras", "Cerebras", "openai", "https://api.cerebras.ai/v1", ("CEREBRAS_API_KEY",),
               docs="https://inference-docs.cerebras.ai/api-reference/chat-completions"),
    VendorSpec("openrouter", "OpenRouter", "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",),
               docs="https://openrouter.ai/docs/api-reference/chat-completion"),
    VendorSpec("perplexity", "Perplexity", "openai", "https://api.perplexity.ai", ("PERPLEXITY_API_KEY",),
               quirks=Quirks(max_tokens_param="max_tokens", stream_options=False, logprobs=False),
               docs="https://docs.perplexity.ai/api-reference/chat-completions-post"),
    VendorSpec("ollama", "Ollama (local)", "openai", "http://localhost:11434/v1", needs_key=False,
               auth="none", quirks=_OPENAI_OLD, docs="https://github.com/ollama/ollama/blob/main/docs/openai.md"),
    VendorSpec("vllm", "vLLM (local)", "openai", "http://localhost:8000/v1", ("VLLM_API_KEY",),
               needs_key=False, docs="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html"),
    VendorSpec("lmstudio", "LM Studio (local)", "openai", "http://localhost:1234/v1", needs_key=False,
               auth="none", quirks=_OPENAI_OLD, docs="https://lmstudio.ai/docs/app/api/endpoints/openai"),
)


#: The ``api-version`` a vendor sends unless its config names one (Azure's query parameter).
DEFAULT_API_VERSION: Mapping[str, str] = MappingProxyType({"azure": "2024-10-21"})


def _fireworks_id(raw: str) -> tuple[str | None, list[str]]:
    """Fireworks' ``accounts/fireworks/models/<model>`` path: the model name is its last segment."""
    return None, [raw.rsplit("/", 1)[-1]]


#: How the catalog compiler reads these vendors' model ids, where not the default way.
CATALOG_IDS: Mapping[str, CatalogIds] = MappingProxyType({"fireworks": CatalogIds(_fireworks_id)})
