"""A simulated exchange as a timeline, shared by the in-process transport and the HTTP server.

The engine decides everything up front (status, headers, every body slice and
the simulated second it leaves, how the connection ends); the two carriers
only replay the timeline, each with its own mechanics (an async iterator or
a socket). Deciding first keeps both carriers byte-identical and lets the
transport check timeouts against simulated time without sleeping through
delays that would exceed a deadline anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from interlock.simulator.generate import Generation
from interlock.simulator.request import SimRequest

Ending = Literal["eof", "drop", "reset"]


@dataclass(slots=True)
class Plan:
    """``first_byte_at`` is when headers (and the first event) arrive; None means never (hang).

    ``events`` are ``(seconds since the request, bytes)`` in order. ``ending``:
    ``eof`` closes cleanly, ``drop`` closes the connection before the body is
    complete (no terminating chunk), ``reset`` aborts it with a TCP reset.
    ``refuse`` means no response at all: the connection is refused/aborted.
    """

    status: int
    headers: dict[str, str]
    events: list[tuple[float, bytes]] = field(default_factory=list)
    first_byte_at: float | None = 0.0
    ending: Ending = "eof"
    refuse: bool = False
    streaming: bool = False


@dataclass(frozen=True, slots=True)
class Meta:
    """Per-response identity: ``id`` suffix and creation time."""

    id: str
    created: int
    model: str


class WireFormat(Protocol):
    """One vendor's API: parse its request, render answers, errors and broken variants."""

    name: str

    def parse(self, body: bytes, path_model: str | None, stream_path: bool) -> SimRequest: ...

    def render(self, gen: Generation, req: SimRequest, meta: Meta) -> bytes: ...

    def render_stream(self, gen: Generation, req: SimRequest, meta: Meta) -> list[tuple[float, bytes]]:
        """The SSE events as ``(tokens carried, bytes)``; the engine turns tokens into time."""
        ...

    def error(self, status: int, message: str, *, param: str | None = None, kind: str | None = None) -> bytes: ...

    def error_event(self, status: int) -> bytes: ...

    def content_type(self, stream: bool) -> str: ...

    def extra_headers(self, meta: Meta) -> dict[str, str]: ...
