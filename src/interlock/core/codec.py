"""What an inbound API format must provide to run on the pipeline.

The pipeline speaks one canonical language (Chat Completions dicts and chunk
payloads, typed in :mod:`interlock.core.canonical`); an :class:`InboundCodec`
translates a public API format into it and back. The OpenAI Chat codec is
nearly the identity; the Anthropic Messages and Responses codecs translate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

from interlock.core.canonical import CanonicalUsage, ChatCompletion, ChatRequest
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, UpstreamError

#: Called by a stream encoder with the canonical (OpenAI-shaped) usage object when it
#: passes; returns the cost in USD to show the caller (None when unpriced).
UsageHook = Callable[[CanonicalUsage], float | None]

#: The marker on a usage object whose counts (and cost) interlock estimated because the vendor sent none.
ESTIMATED: Final = "estimated"

#: A usage object: canonical, or as an adapter built it (``Completion.data`` is untyped until the vendors are).
_Usage = TypeVar("_Usage", CanonicalUsage, dict[str, Any])


def set_cost(usage: _Usage, cost: float | None) -> _Usage:
    """``usage.cost`` is interlock's figure or absent: a vendor's own cost (or marker) never reaches the caller."""
    usage.pop("cost", None)
    usage.pop(ESTIMATED, None)
    if cost is not None:
        usage["cost"] = cost
    return usage


def malformed_event(vendor: str) -> UpstreamError:
    """A vendor stream event that is not one JSON object: cut JSON, or two events fused by broken SSE framing."""
    return UpstreamError(f"{vendor} sent a stream event that is not one JSON object (broken JSON or SSE framing); "
                         "the answer is incomplete.", code="upstream_stream_malformed")


class StreamEncoder(Protocol):
    """Canonical chunk payloads → the caller's stream format."""

    #: True once a usage chunk has passed (so the pipeline knows not to estimate).
    usage_seen: bool
    #: True once ``encode`` met a payload it cannot relay (not one JSON object, or a vendor's error
    #: object): it wrote the format's error event and recorded the failure on the context; the
    #: pipeline sends nothing more and stops reading the vendor.
    failed: bool

    def encode(self, payloads: list[bytes]) -> bytes:
        """Bytes to send for these canonical chunk payloads (may be empty)."""
        ...

    def finish(self, estimated: CanonicalUsage | None = None) -> bytes:
        """The closing bytes of a stream that completed normally.

        ``estimated`` is the canonical usage interlock estimated when the vendor sent none (with
        ``cost`` and the ``estimated`` marker): the encoder reports it where the format reports usage.
        """
        ...

    def error(self, err: GatewayError) -> bytes:
        """A well-formed error event for a failure after the stream started."""
        ...


class InboundCodec(Protocol):
    #: Short name recorded with each request, e.g. "openai.chat".
    name: str
    #: Content type of streamed responses.
    stream_content_type: str
    #: :meth:`completion`'s body is the canonical completion's JSON itself (Chat Completions): the response
    #: cache stores the body that was sent instead of serialising the answer a second time.
    canonical_body: bool

    async def parse(self, body: bytes, ctx: RequestContext) -> ChatRequest:
        """Validate the caller's body and return the canonical Chat Completions request.

        Async so a codec may read state it needs (the Responses API's
        ``previous_response_id``) without blocking the loop; ``ctx`` already
        knows the caller (``principal``, ``zero_data_retention``), which scopes
        that state.

        Raises :class:`~interlock.core.errors.InvalidRequest` naming the offending parameter
        (in the caller's format's terms).
        """
        ...

    def render_error(self, err: GatewayError) -> bytes:
        """The error body in the caller's format."""
        ...

    def completion(self, ctx: RequestContext, request: ChatRequest, data: ChatCompletion) -> bytes:
        """A canonical completion (with ``usage.cost`` already added) in the caller's format."""
        ...

    def stream_encoder(self, ctx: RequestContext, request: ChatRequest, on_usage: UsageHook) -> StreamEncoder:
        ...
