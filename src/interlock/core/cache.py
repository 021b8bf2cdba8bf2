"""What the response cache offers the request path (``cache/``, ``pipeline/cache.py``), as core protocols.

The cache stage puts a :class:`CacheTicket` on the context when the cache is on for a request: it says
whether the lookup hit, replays the stored answer in place of a vendor call, and takes the vendor's answer
to store when it may be stored. The pipeline knows the cache only through this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from interlock.core.pricing import Cost
from interlock.core.vendor import ChunkSource, Completion

if TYPE_CHECKING:  # a cycle for a type: context.py holds a CacheTicket
    from interlock.core.context import RequestContext

HIT, MISS, BYPASS = "hit", "miss", "bypass"


class CacheTicket(Protocol):
    #: ``hit``, ``miss`` or ``bypass`` (the cache is on but this request may not use it).
    status: str
    #: A miss whose answer may be stored (the pipeline keeps the vendor's raw answer only then).
    storing: bool
    #: On a hit: what the answer cost when it was made (at today's price of its route when that is known).
    saved: Cost | None
    #: A hit by meaning (the semantic cache: a stored single-turn prompt close enough), not by the exact key.
    semantic: bool
    #: On a semantic hit: the cosine similarity of the two prompts (else None).
    similarity: float | None

    def headers(self) -> list[tuple[str, str]]:
        """``x-interlock-cache`` (and ``-age`` on a hit, ``-similarity`` on a semantic one, ``-reason`` on a
        bypass)."""
        ...

    def completion(self) -> Completion:
        """A hit on a non-streamed request: the stored answer (a chat completion, or ``/v1/embeddings``'s
        answer body)."""
        ...

    def source(self) -> ChunkSource:
        """A hit on a streamed request: the stored chunks, all at once."""
        ...

    def charge(self, cost: Cost | None) -> Cost:
        """A hit: records what the answer cost (``cost`` at today's price, None when the route is unpriced or
        gone: the stored cost) as saved and returns what the caller is charged (a configured fraction)."""
        ...

    def store_completion(self, ctx: RequestContext, body: bytes) -> None:
        """A miss answered in full: store the vendor's answer (canonical JSON, before any redaction; for
        embeddings, the answer body without its cost)."""
        ...

    def store_stream(self, ctx: RequestContext, payloads: list[bytes]) -> None:
        """A miss whose stream completed: store its canonical chunk payloads (as the vendor sent them)."""
        ...
