"""What the request path knows of a vendor: its description, timeouts and adapter interfaces.

A :class:`VendorSpec` describes a vendor as data (wire family, base URL, how the
key is sent, dialect quirks). Adapters take the canonical request (a Chat
Completions dict) and give back canonical data: a whole :class:`Completion`, or
a :class:`ChunkSource` of canonical chunk payloads (JSON bytes shaped like
``chat.completion.chunk``, the last carrying ``usage``). A :class:`VendorRuntime`
is one live vendor as routing and dispatch use it; ``interlock.vendors`` builds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Quirks:
    """How a vendor's Chat Completions dialect departs from OpenAI's."""

    #: Send the output limit under this name (older dialects only know ``max_tokens``).
    max_tokens_param: str = "max_completion_tokens"
    #: Accepts ``stream_options.include_usage``; when False the field is removed
    #: (such vendors send usage in the last chunk on their own).
    stream_options: bool = True
    #: Returns ``logprobs`` / ``top_logprobs``; when False they are dropped (``x-interlock-dropped-params``).
    logprobs: bool = True


@dataclass(frozen=True, slots=True)
class VendorSpec:
    id: str
    name: str
    #: Wire family: "openai" (Chat Completions), "simulator" (in-process), or a native format
    #: translated by its own adapter: "anthropic", "gemini", "vertex", "bedrock", "cohere".
    type: str
    base_url: str | None
    #: Environment variables holding the credential; the first one set wins.
    key_env: tuple[str, ...] = ()
    #: "bearer" (Authorization: Bearer), "api-key" (Azure's header), "none", or - for native
    #: vendors, informational - "x-api-key", "x-goog-api-key", "sigv4", "service-account".
    auth: str = "bearer"
    needs_key: bool = True
    #: Environment variable holding the base URL where it is per-account (Azure).
    base_url_env: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    quirks: Quirks = Quirks()
    docs: str = ""
    #: Capabilities the adapter provides for any model that can call tools, whatever the
    #: catalog says of the model: Anthropic-family adapters turn ``json_schema`` output into
    #: a forced tool call, and the simulator honours every schema.
    via_tools: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 60.0
    total: float = 600.0


@dataclass(slots=True)
class Completion:
    """A whole, canonical (Chat Completions) answer."""

    data: dict[str, Any]
    status: int = 200
    #: Request parameters the vendor cannot honour and the adapter dropped.
    dropped: tuple[str, ...] = field(default=())


class ChunkSource(Protocol):
    #: True when the vendor closed the stream without finishing it (no finish reason, no end frame).
    truncated: bool
    #: Request parameters the vendor cannot honour and the adapter dropped.
    dropped: tuple[str, ...]

    async def next_batch(self) -> list[bytes] | None:
        """The next canonical chunk payloads, or None at the end of the stream."""
        ...

    def close(self) -> None:
        """Release the upstream connection (aborting it when the stream is unfinished)."""
        ...


#: One embedding: floats, or OpenAI's ``encoding_format: base64`` (little-endian float32 bytes) as the vendor sent it.
Vector = list[float] | str


@dataclass(slots=True)
class EmbeddingResult:
    """Vectors in input order; ``input_tokens`` is None when the vendor reports no count."""

    vectors: list[Vector]
    input_tokens: int | None = None
    #: The model name the vendor answered with, when it names one.
    model: str | None = None


class EmbeddingAdapter(Protocol):
    """``POST /v1/embeddings`` for one vendor: the validated OpenAI request in, vectors out."""

    async def embed(self, request: Mapping[str, Any], vendor_model: str,
                    extra_headers: Mapping[str, str] | None = None) -> EmbeddingResult: ...


class ChatAdapter(Protocol):
    async def complete(self, request: Mapping[str, Any], vendor_model: str,
                       extra_headers: Mapping[str, str] | None = None) -> Completion: ...

    async def stream(self, request: Mapping[str, Any], vendor_model: str,
                     extra_headers: Mapping[str, str] | None = None) -> ChunkSource: ...


@dataclass(frozen=True, slots=True)
class VendorRuntime:
    """A live vendor: what it is, its timeouts, and the adapters that call it."""

    spec: VendorSpec
    timeouts: Timeouts
    adapter: ChatAdapter
    #: ``POST /v1/embeddings`` for this vendor; None when it has no embeddings API.
    embedder: EmbeddingAdapter | None = None
    #: Where this instance runs (``VendorConfig.regions``); () when unknown.
    regions: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id
