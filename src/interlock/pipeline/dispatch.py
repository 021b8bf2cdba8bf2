"""Dispatch: send the canonical request to the routed targets, failing over between them.

A non-streaming call returns a whole :class:`Completion`; a streaming call
returns the chunk source together with everything up to its first content
chunk, so the caller commits to the client only once content has arrived.
Failing over is only possible before that point - after it, the client has
bytes from one vendor and a second vendor's answer would not continue them.

Failover rules (the attempt loop in :meth:`Dispatcher._run`):

* connection errors, timeouts, 5xx, a stream that dies (or sends a malformed
  event) before content: retry
  the same target with exponential backoff and jitter (``retry.attempts``),
  then the next target;
* 429: wait for ``Retry-After`` and retry the same target when that fits
  ``retry.max_retry_after_s`` and the deadline, else the next target;
* a context-length refusal: the next target with a *larger* window;
* a vendor refusing interlock's credential: the next target (a config
  problem of that vendor, not the caller's);
* any other 4xx: never retried - the caller's request is wrong everywhere.

Everything happens inside the policy's total deadline. Every attempt is
recorded on the context; the context's ``target`` is the one that answered,
so the request is billed once, at that target's price.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson

from interlock.configfile import unsafe_header_value
from interlock.core.codec import malformed_event
from interlock.core.context import RequestContext
from interlock.core.errors import (
    GatewayError,
    NoRouteAvailable,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from interlock.core.plan import Target
from interlock.core.policy import Retry
from interlock.core.timers import expire_in
from interlock.core.trace import Attempt
from interlock.core.vendor import ChunkSource, Completion
from interlock.routing.circuit import Circuits
from interlock.routing.engine import RoutingEngine
from interlock.routing.stats import LiveStats
from interlock.vendors.errors import error_from_status
from interlock.vendors.registry import SIMULATOR_HEADERS

T = TypeVar("T")
RETRY, NEXT, LARGER, FATAL = "retry", "next", "larger_window", "fatal"
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length", "prompt_too_long"})
_CONTEXT_WORDS = ("context length", "context window", "maximum context", "prompt is too long", "too many tokens")


def forwarded_headers(headers: Any, simulated: bool) -> dict[str, str] | None:
    """Client headers a target receives (``simulated``: ``Target.simulated``): only the simulator's
    test-injection headers, and only for the simulator."""
    if not simulated:
        return None
    extra = {}
    for name in SIMULATOR_HEADERS:
        value = headers.get(name)
        if value is not None and not unsafe_header_value(text := str(value)):  # never CR/LF/NUL upstream
            extra[name] = text
    return extra or None


def is_context_length(err: GatewayError) -> bool:
    if err.code in _CONTEXT_CODES:
        return True
    text = err.message.lower()
    return any(word in text for word in _CONTEXT_WORDS)


def classify(err: GatewayError) -> str:
    """What a failed attempt means for the next one (see the module docstring)."""
    if isinstance(err, RateLimited | UpstreamTimeout):
        return RETRY
    if isinstance(err, UpstreamRejected):
        return LARGER if is_context_length(err) else FATAL
    if isinstance(err, UpstreamError):
        return NEXT if err.code == "upstream_auth_error" else RETRY
    return FATAL


def retry_after_seconds(err: GatewayError) -> float | None:
    raw = err.headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


def _has_content(payload: bytes, vendor: str) -> bool:
    """Does a canonical chunk carry something the client must see (text, tool call, finish, usage)?

    A payload that is not one JSON object (a cut or fused event) fails the attempt: nothing has been
    sent yet, so the request can still fail over or be answered with a proper status.
    """
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise malformed_event(vendor) from None
    if not isinstance(chunk, dict):
        raise malformed_event(vendor)
    if chunk.get("usage"):
        return True
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if choice.get("finish_reason") is not None:
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(delta.get(k) for k in ("content", "tool_calls", "reasoning_content",
                                                                  "reasoning", "refusal", "audio")):
            return True
    return False


def _stream_error(payload: bytes, vendor: str) -> GatewayError | None:
    """A vendor error event (``{"error": {...}}``) sent in place of the first chunks."""
    if b'"error"' not in payload:
        return None
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "error" not in data or "choices" in data:
        return None
    err = data["error"]
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    return error_from_status(vendor, status, {}, payload)


async def first_content(source: ChunkSource, vendor: str) -> list[bytes] | None:
    """Read until the first content chunk; everything before it is returned with it."""
    buffered: list[bytes] = []
    while True:
        batch = await source.next_batch()
        if batch is None:
            if source.truncated:
                raise UpstreamError(f"{vendor} ended the stream before sending any content",
                                    code="upstream_stream_truncated")
            return buffered or None
        # An error event can only stand in place of the first chunks: once content is seen, the rest of
        # the batch goes to the client unchecked (a whole answer can arrive in one read).
        for payload in batch:
            err = _stream_error(payload, vendor)
            if err is not None:
                raise err
            if _has_content(payload, vendor):
                buffered.extend(batch)
                return buffered
        buffered.extend(batch)


class Dispatcher:
    def __init__(
        self,
        engine: RoutingEngine | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.engine = engine
        self.circuits: Circuits = engine.circuits if engine is not None else Circuits()
        self.stats: LiveStats = engine.stats if engine is not None else LiveStats()
        self.sleep = sleep
        self.clock = clock
        self.rng = rng

    async def complete(self, ctx: RequestContext, request: Mapping[str, Any], client_headers: Any) -> Completion:
        async def call(target: Target) -> Completion:
            return await target.vendor.adapter.complete(request, target.vendor_model,
                                                        forwarded_headers(client_headers, target.simulated))

        return await self.call(ctx, call)

    async def stream(self, ctx: RequestContext, request: Mapping[str, Any],
                     client_headers: Any) -> tuple[ChunkSource, list[bytes] | None]:
        async def call(target: Target) -> tuple[ChunkSource, list[bytes] | None]:
            source = await target.vendor.adapter.stream(request, target.vendor_model,
                                                        forwarded_headers(client_headers, target.simulated))
            try:
                first = await first_content(source, target.vendor.spec.name)
            except BaseException:
                source.close()
                raise
            return source, first

        return await self.call(ctx, call)

    def _backoff(self, retry: Retry, tries: int) -> float:
        ceiling = min(retry.max_backoff_s, retry.backoff_s * 2.0 ** (tries - 1))
        return ceiling / 2 + self.rng() * ceiling / 2

    async def call(self, ctx: RequestContext, call: Callable[[Target], Awaitable[T]]) -> T:
        """Try ``call`` on the plan's targets in order, with retries, failover and attempt records.

        Any kind of vendor call (chat, embeddings) goes through this one loop.
        """
        trace = ctx.routing
        if trace is None:
            assert ctx.plan is not None and self.engine is not None
            trace = ctx.routing = self.engine.ordered(ctx.plan)
            trace.attempts = ctx.attempts
        retry = trace.retry or Retry()
        clock = self.clock
        deadline = clock() + trace.timeout_s
        last_error: GatewayError | None = None
        last_target: Target | None = None
        larger_than: int | None = None
        for target in trace.order:
            if larger_than is not None and (target.context_window or 0) <= larger_than:
                ctx.attempts.append(Attempt(target.key, target.vendor_id, target.model_id, clock(),
                                            error=f"context window not larger than {larger_than:,}",
                                            outcome="skipped"))
                continue
            tries = 0
            while True:
                remaining = deadline - clock()
                if remaining <= 0:
                    break
                if not self.circuits.acquire(target.key):
                    ctx.attempts.append(Attempt(target.key, target.vendor_id, target.model_id, clock(),
                                                error="circuit open", outcome="skipped"))
                    break
                tries += 1
                last_target = target
                attempt = Attempt(target.key, target.vendor_id, target.model_id, clock(), regions=target.vendor.regions)
                ctx.attempts.append(attempt)
                try:
                    try:
                        with expire_in(remaining):
                            result = await call(target)
                    except TimeoutError:
                        raise UpstreamTimeout(f"the routing deadline of {trace.timeout_s:g}s ran out while "
                                              f"waiting for {target.key}") from None
                except GatewayError as exc:
                    err = exc.with_traceback(None)
                    attempt.latency_ms = (clock() - attempt.started) * 1000.0
                    attempt.status = err.status
                    attempt.error = err.message
                    attempt.code = err.code
                    if isinstance(err, RateLimited):
                        attempt.retry_after = retry_after_seconds(err)
                    action = classify(err)
                    if action == FATAL:
                        self.circuits.release(target.key)
                        ctx.target = target
                        raise
                    # A context-length refusal is a sound answer from a live vendor: not a circuit failure.
                    self.circuits.record(target.key, action == LARGER)
                    self.stats.attempt(target.key, ok=False,
                                       down=action in (RETRY, NEXT) and not isinstance(err, RateLimited))
                    last_error = err
                    if action == LARGER:
                        larger_than = target.context_window or 0
                        break
                    if action == NEXT or tries >= retry.attempts or not self.circuits.available(target.key):
                        break
                    delay = self._backoff(retry, tries)
                    if isinstance(err, RateLimited):
                        wait = attempt.retry_after
                        if wait is not None:
                            if wait > retry.max_retry_after_s:
                                break
                            delay = max(delay, wait)
                    if clock() + delay >= deadline:
                        break
                    await self.sleep(delay)
                    continue
                except BaseException:
                    # Cancelled (the client left) or a bug: no verdict on the vendor.
                    self.circuits.release(target.key)
                    raise
                attempt.latency_ms = (clock() - attempt.started) * 1000.0
                attempt.status = 200
                attempt.outcome = "answered"
                self.circuits.record(target.key, True)
                if self.engine is None:  # else the engine counts it with the answer's timings (observe)
                    self.stats.attempt(target.key, ok=True)
                ctx.target = target
                return result
        if last_target is not None:
            ctx.target = last_target
        if last_error is not None:
            raise last_error
        if deadline - clock() <= 0:
            raise UpstreamTimeout(f"the routing deadline of {trace.timeout_s:g}s ran out before any target answered")
        raise NoRouteAvailable("No target could be tried: " + "; ".join(
            f"{a.target}: {a.error}" for a in ctx.attempts if a.outcome == "skipped") + ".", param="model")
