"""Built-in vendors, described as data.

Most vendors speak the OpenAI Chat Completions dialect; what differs between
them is a base URL, how the key is sent, and a few parameter quirks. Each is a
:class:`VendorSpec`; the one OpenAI-compatible adapter reads it. A vendor is
*live* when its credential is present (its environment variable is set, or the
config names a key), or - for local servers that need no key - when the config
lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from interlock.core.vendor import Quirks, VendorSpec

_OPENAI_OLD = Quirks(max_tokens_param="max_tokens")
_VIA_TOOLS = frozenset({"structured_outputs"})
#: Groq's API refuses logprobs.
_NO_LOGPROBS = Quirks(logprobs=False)

BUILTIN: Mapping[str, VendorSpec] = MappingProxyType(
    {
        spec.id: spec
        for spec in (
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
            VendorSpec("anthropic", "Anthropic", "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",),
                       auth="x-api-key", docs="https://docs.anthropic.com/en/api/messages",
                       via_tools=_VIA_TOOLS),
            VendorSpec("google", "Google Gemini", "gemini", "https://generativelanguage.googleapis.com",
                       ("GEMINI_API_KEY", "GOOGLE_API_KEY"), auth="x-goog-api-key",
                       docs="https://ai.google.dev/api/generate-content"),
            VendorSpec("vertex", "Vertex AI", "vertex", None, (),
                       auth="service-account", docs="https://cloud.google.com/vertex-ai/generative-ai/docs",
                       via_tools=_VIA_TOOLS),
            VendorSpec("bedrock", "AWS Bedrock", "bedrock", None, (), auth="sigv4",
                       docs="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html",
                       via_tools=_VIA_TOOLS),
            VendorSpec("cohere", "Cohere", "cohere", "https://api.cohere.com", ("COHERE_API_KEY",),
                       docs="https://docs.cohere.com/reference/chat"),
            VendorSpec("simulator", "Simulator (offline)", "simulator", "http://simulator.internal/v1",
                       needs_key=False, auth="none", via_tools=_VIA_TOOLS),
        )
    }
)

#: Labs whose models the simulator answers with logprobs: OpenAI's chat models return them.
SIMULATED_LOGPROB_LABS = frozenset({"openai"})


def simulator_logprobs(model_id: str) -> bool:
    """Whether the simulator generates logprobs for this catalog model (``lab/model``)."""
    return model_id.partition("/")[0] in SIMULATED_LOGPROB_LABS


def returns_logprobs(spec: VendorSpec, vendor_model: str) -> bool:
    """Whether interlock gets ``logprobs`` back from this vendor for this model (Gemini maps
    ``logprobsResult``; Anthropic - Claude on Vertex too -, Bedrock and Cohere return none;
    the simulator for the labs in :data:`SIMULATED_LOGPROB_LABS`)."""
    if spec.type == "simulator":
        return simulator_logprobs(vendor_model)
    if spec.type == "openai":
        return spec.quirks.logprobs
    if spec.type == "vertex":
        return not vendor_model.startswith("claude")
    return spec.type == "gemini"


#: Vendor types a config may name for a vendor interlock has no spec for.
CUSTOM_TYPES = ("openai", "anthropic", "gemini", "cohere", "bedrock", "vertex")
