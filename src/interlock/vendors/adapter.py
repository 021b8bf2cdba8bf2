"""The interface every vendor adapter implements, whatever its wire format.

Adapters take the canonical request (a Chat Completions dict) and give back
canonical data: a whole :class:`Completion`, or a :class:`ChunkSource` of
canonical chunk payloads (JSON bytes shaped like ``chat.completion.chunk``,
the final one carrying ``usage``). The OpenAI-compatible adapter passes the
vendor's bytes through; translating adapters (Anthropic, Gemini, Bedrock,
Cohere) build them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


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
