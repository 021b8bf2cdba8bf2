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


class ChatAdapter(Protocol):
    async def complete(self, request: Mapping[str, Any], vendor_model: str,
                       extra_headers: Mapping[str, str] | None = None) -> Completion: ...

    async def stream(self, request: Mapping[str, Any], vendor_model: str,
                     extra_headers: Mapping[str, str] | None = None) -> ChunkSource: ...
