"""The per-request record that travels through every stage of the pipeline."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from interlock.core.cache import CacheTicket
from interlock.core.errors import GatewayError
from interlock.core.exchange import Exchange
from interlock.core.plan import Plan, Target
from interlock.core.pricing import Cost, Usage
from interlock.core.principal import Principal
from interlock.core.trace import Attempt, RoutingTrace

_ID_RANDOM_HEX = 11
_ID_BATCH = 256
_id_pool: list[str] = []
# A forked worker must never hand out random parts drawn by its parent.
os.register_at_fork(after_in_child=_id_pool.clear)


def new_request_id() -> str:
    """``req_`` + 13 hex digits of the time in µs + 11 random hex digits (24 in all).

    Time first, so ids sort (to the µs) by arrival and the request log's id index appends instead of touching
    pages all over (less CPU and I/O per record: ``bench/ledger_cost.py``). The random
    part (44 bits from the OS's CSPRNG, drawn 256 ids per system call) keeps ids unique across
    workers and replicas; ids are not secrets (``/v1/generation`` checks the caller's key).
    """
    if not _id_pool:
        raw = os.urandom((_ID_RANDOM_HEX + 1) // 2 * _ID_BATCH).hex()
        step = _ID_RANDOM_HEX + 1
        _id_pool.extend(raw[i:i + _ID_RANDOM_HEX] for i in range(0, len(raw), step))
    return f"req_{time.time_ns() // 1000:013x}{_id_pool.pop()}"


class StreamScreen(Protocol):
    """A stream's canonical chunk payloads in, those safe to relay out."""

    @property
    def blocked(self) -> GatewayError | None: ...

    def feed(self, payloads: list[bytes]) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def log_text(self) -> str | None:
        """The relayed text as the vendor wrote it (placeholders, not restored values) for the request log;
        None when it is what the relayed payloads say."""
        ...


class AnswerScreen(Protocol):
    """What the guardrails do to an answer (OpenAI-shaped, before the inbound codec writes it)."""

    #: The request's redacted values are put back into the answer.
    restoring: bool

    def screen(self, data: dict[str, Any]) -> None:
        """Scan a completion in place (redacting); raise the GatewayError that blocks it."""
        ...

    def restore(self, data: dict[str, Any]) -> None: ...

    def stream(self) -> StreamScreen: ...

    def settle(self, ctx: RequestContext) -> None:
        """Record what was found on the log record, in the metrics and (when headers are still to be sent) in
        ``x-interlock-guardrails``."""
        ...


@dataclass(slots=True)
class RequestContext:
    inbound: str
    id: str = field(default_factory=new_request_id)
    received_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    #: The HTTP exchange, for stages that read request headers (the cache's controls).
    exchange: Exchange | None = None
    requested_model: str | None = None
    stream: bool = False
    plan: Plan | None = None
    target: Target | None = None
    status: int = 200
    error: GatewayError | None = None
    first_byte: float | None = None
    usage: Usage | None = None
    cost: Cost | None = None
    client_disconnected: bool = False
    #: The routing decision and its trace (routing/engine.py); every vendor call made (pipeline/dispatch.py).
    routing: RoutingTrace | None = None
    attempts: list[Attempt] = field(default_factory=list)
    # --- request log ---
    #: Caller-supplied labels (``x-interlock-tags``) and end user (the body's ``user``).
    tags: tuple[str, ...] = ()
    end_user: str | None = None
    #: Content is kept only when the log level for this request is ``full`` (never under ZDR).
    capture_content: bool = False
    zero_data_retention: bool = False
    request_content: object = None
    response_content: object = None
    #: Incoming W3C ``traceparent`` so the gateway's spans join the caller's trace.
    traceparent: str | None = None
    # --- governance ---
    #: The project's request-log level (``off``/``metadata``/``full``); None follows ``logging.level``.
    log_level: str | None = None
    #: What admit reserved (``governance/service.py``), released by settle; rate-limit/budget headers.
    #: Governance's reservation, opaque to every other stage.
    reservation: object = None
    gov_headers: list[tuple[str, str]] | None = None
    # --- guardrails ---
    #: What the guardrails found, for the log record: ``{detector, action, score, entities}`` each, never text.
    guardrails: list[dict[str, object]] | None = None
    #: ``x-interlock-guardrails``: ``detector=action, ...``.
    guardrails_header: str | None = None
    #: The answer side (``guardrails/answer.py``): scans what the model wrote and restores redacted values;
    #: None when no detector looks at answers and nothing is restored.
    answer: AnswerScreen | None = None
    # --- response cache ---
    #: Set by the cache stage when the cache is on for this request (``pipeline/cache.py``).
    cache: CacheTicket | None = None

    def fail(self, error: GatewayError) -> None:
        # Drop the traceback: it references the handler's frames, which reference this
        # context, and such cycles would keep responses and buffers alive until a GC pass.
        error.__traceback__ = None
        error.request_id = self.id  # renderers that quote it (Anthropic's request_id) read it here
        self.status = error.status
        self.error = error

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def response_headers(self) -> list[tuple[str, str]]:
        headers = [("x-interlock-request-id", self.id)]
        target = self.target
        if target is not None:
            headers.append(("x-interlock-vendor", target.vendor_id))
            headers.append(("x-interlock-model", target.model_id))
        if self.routing is not None:
            headers.extend(self.routing.headers(target))
        if self.gov_headers:
            headers.extend(self.gov_headers)
        if self.guardrails_header:
            headers.append(("x-interlock-guardrails", self.guardrails_header))
        if self.cache is not None:
            headers.extend(self.cache.headers())
        return headers
