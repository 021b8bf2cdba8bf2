"""Failover rules against simulator faults: every rule, deterministic, in-process, no sockets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from interlock.core.errors import GatewayError, RateLimited, UpstreamError, UpstreamRejected, UpstreamTimeout
from interlock.core.policy import Policy, PolicyTarget, Retry
from interlock.core.vendor import Timeouts
from interlock.pipeline.dispatch import classify, first_content
from tests.test_routing_fixtures import MODEL, chat, simulator, world


def fault(spec: str) -> Mapping[str, str]:
    return {MODEL: spec}


async def run(w: Any, request: dict[str, Any], headers: Mapping[str, str] | None = None) -> Any:
    ctx, canonical = w.context(request)
    result = await w.dispatcher.complete(ctx, canonical, headers or {})
    return ctx, result


@pytest.mark.parametrize("spec", ["error=503", "error=500", "error=502", "error=529", "refuse", "reset",
                                  "stop_after=0", "malformed_json"])
async def test_vendor_failures_fail_over_to_the_next_target(spec: str) -> None:
    w = world({"sima": simulator(fault(spec)), "simb": simulator()})
    ctx, completion = await run(w, chat())
    assert completion.data["choices"][0]["message"]["content"]
    assert ctx.target is not None and ctx.target.vendor.id == "simb"
    outcomes = [(a.vendor, a.outcome) for a in ctx.attempts]
    # The default policy retries the same target once (with backoff), then moves on.
    assert outcomes == [("sima", "failed"), ("sima", "failed"), ("simb", "answered")]
    assert len(w.sleeps) == 1 and 0.05 <= w.sleeps[0] <= 0.1
    assert all(a.status is not None and a.status >= 500 for a in ctx.attempts[:2])


async def test_timeout_fails_over() -> None:
    w = world({"sima": simulator(fault("hang")), "simb": simulator()},
              timeouts=Timeouts(connect=1, first_byte=30, idle=30, total=60))
    ctx, _ = await run(w, chat())
    assert ctx.target is not None and ctx.target.vendor.id == "simb"
    assert [a.status for a in ctx.attempts] == [504, 504, 200]


async def test_client_errors_are_never_retried_nor_failed_over() -> None:
    w = world({"sima": simulator(fault("error=400")), "simb": simulator()})
    ctx, canonical = w.context(chat())
    with pytest.raises(UpstreamRejected) as info:
        await w.dispatcher.complete(ctx, canonical, {})
    assert info.value.status == 400
    assert [(a.vendor, a.status) for a in ctx.attempts] == [("sima", 400)]
    assert w.sleeps == []


@pytest.mark.parametrize("status", [404, 413, 422])
async def test_no_failover_on_other_client_errors(status: int) -> None:
    w = world({"sima": simulator(fault(f"error={status}")), "simb": simulator()})
    ctx, canonical = w.context(chat())
    with pytest.raises(GatewayError):
        await w.dispatcher.complete(ctx, canonical, {})
    assert len(ctx.attempts) == 1 and ctx.attempts[0].vendor == "sima"
    # A client error says nothing about the vendor's health: no circuit verdict.
    assert w.engine.circuits.get(ctx.attempts[0].target).counts(w.clock()) == (0, 0)


@pytest.mark.parametrize("status", [401, 403])
async def test_vendor_refusing_our_credential_moves_to_the_next_vendor_without_retry(status: int) -> None:
    # The caller's key was accepted by interlock; the *vendor* refused interlock's key (a 502 for the
    # caller): another vendor with its own credential can answer. Retrying the same one cannot help.
    w = world({"sima": simulator(fault(f"error={status}")), "simb": simulator()})
    ctx, _ = await run(w, chat())
    assert [(a.vendor, a.code) for a in ctx.attempts] == [("sima", "upstream_auth_error"), ("simb", None)]
    assert w.sleeps == []


async def test_429_short_retry_after_retries_the_same_target_after_waiting() -> None:
    # rate=... keeps the first draw failing and the second succeeding (seeded simulator).
    w = world({"sima": simulator(fault("error=429;retry_after=0.7"))})
    ctx, canonical = w.context(chat())
    with pytest.raises(RateLimited):
        await w.dispatcher.complete(ctx, canonical, {})
    # Waited exactly the vendor's Retry-After (it is longer than the backoff), then tried again.
    assert w.sleeps == [0.7]
    assert [a.retry_after for a in ctx.attempts] == [0.7, 0.7]


async def test_429_long_retry_after_moves_on_at_once() -> None:
    w = world({"sima": simulator(fault("error=429;retry_after=30")), "simb": simulator()})
    ctx, _ = await run(w, chat())
    assert w.sleeps == []
    assert [(a.vendor, a.status) for a in ctx.attempts] == [("sima", 429), ("simb", 200)]


async def test_retry_after_from_the_header_is_honoured_per_request() -> None:
    # The fault header reaches the built-in simulator vendor only (it is a test-injection header).
    w = world({"simulator": simulator()})
    ctx, canonical = w.context(chat())
    with pytest.raises(RateLimited):
        await w.dispatcher.complete(ctx, canonical, {"x-interlock-simulator-fault": "error=429;retry_after=1.5"})
    assert w.sleeps == [1.5]
    assert [(a.status, a.retry_after) for a in ctx.attempts] == [(429, 1.5), (429, 1.5)]


async def test_deadline_bounds_all_attempts() -> None:
    policy = Policy("tight", (PolicyTarget(f"sima/{MODEL}"), PolicyTarget(f"simb/{MODEL}")),
                    retry=Retry(attempts=5, backoff_s=1.0, max_backoff_s=4.0), timeout_s=2.5)
    w = world({"sima": simulator(fault("error=503")), "simb": simulator(fault("error=503"))},
              policies={"tight": policy}, seed=1.0)
    ctx, canonical = w.context(chat("tight"))
    with pytest.raises(UpstreamError):
        await w.dispatcher.complete(ctx, canonical, {})
    # sima: backoff 1 s, then 2 s would cross the 2.5 s deadline, so on to simb despite 5 allowed tries;
    # simb: 1 s fits (at 2 s), its next backoff does not. Four attempts, 2 s of waiting, in the deadline.
    assert w.sleeps == [1.0, 1.0]
    assert [a.vendor for a in ctx.attempts] == ["sima", "sima", "simb", "simb"]


class ContextLimitTransport:
    """A vendor that refuses prompts over a window, like OpenAI's context_length_exceeded."""

    def __init__(self) -> None:
        self.calls = 0

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes, timeouts: Timeouts) -> Any:
        self.calls += 1
        return _Canned(400, b'{"error": {"message": "This model\'s maximum context length is 8192 tokens.", '
                            b'"type": "invalid_request_error", "param": "messages", '
                            b'"code": "context_length_exceeded"}}')

    async def close(self) -> None:
        return None


class _Canned:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.headers: Mapping[str, str] = {"content-type": "application/json"}
        self._body = body

    async def read(self) -> bytes:
        return self._body

    async def iter_bytes(self) -> Any:
        yield self._body

    def close(self) -> None:
        return None


async def test_context_length_error_moves_to_a_larger_window() -> None:
    small = ContextLimitTransport()
    routes = {"sima": {"context_window": 8192}, "simb": {"context_window": 8192}, "simc": {"context_window": 1_000_000}}
    w = world({"sima": small, "simb": simulator(), "simc": simulator()}, routes=routes)
    ctx, _ = await run(w, chat())
    # simb has the same window as the target that refused: skipped, straight to simc.
    assert [(a.vendor, a.outcome) for a in ctx.attempts] == [("sima", "failed"), ("simb", "skipped"),
                                                            ("simc", "answered")]
    assert small.calls == 1 and w.sleeps == []
    # The refusing vendor is alive: its circuit records a success, not a failure.
    assert w.engine.circuits.get(ctx.attempts[0].target).counts(w.clock()) == (1, 0)


def test_classification_table() -> None:
    assert classify(RateLimited("x")) == "retry"
    assert classify(UpstreamTimeout("x")) == "retry"
    assert classify(UpstreamError("x")) == "retry"
    assert classify(UpstreamError("x", code="upstream_auth_error")) == "next"
    assert classify(UpstreamRejected("x", status=400, code="context_length_exceeded")) == "larger_window"
    assert classify(UpstreamRejected("x", status=400)) == "fatal"
    assert classify(UpstreamRejected("x", status=401)) == "fatal"


# ----------------------------------------------------------------------------- streams


async def stream(w: Any, request: dict[str, Any], headers: Mapping[str, str] | None = None) -> Any:
    ctx, canonical = w.context({**request, "stream": True})
    source, first = await w.dispatcher.stream(ctx, canonical, headers or {})
    batches = [first]
    while True:
        batch = await source.next_batch()
        if batch is None:
            break
        batches.append(batch)
    source.close()
    return ctx, batches


@pytest.mark.parametrize("spec", ["error=503", "refuse", "reset", "stop_after=0", "stop_after=1"])
async def test_stream_fails_over_before_the_first_content_chunk(spec: str) -> None:
    w = world({"sima": simulator(fault(spec)), "simb": simulator()})
    ctx, batches = await stream(w, chat())
    assert ctx.target is not None and ctx.target.vendor.id == "simb"
    text = b"".join(p for batch in batches for p in batch)
    assert b'"content"' in text and b'"usage"' in text
    assert ctx.attempts[-1].outcome == "answered" and all(a.outcome == "failed" for a in ctx.attempts[:-1])


async def test_stream_failure_after_first_content_is_not_failed_over() -> None:
    w = world({"sima": simulator(fault("stop_after=4")), "simb": simulator()})
    ctx, canonical = w.context(chat(stream=True))
    source, first = await w.dispatcher.stream(ctx, canonical, {})
    assert first  # content arrived from sima: committed to it
    assert ctx.target is not None and ctx.target.vendor.id == "sima"
    with pytest.raises(UpstreamError):
        while await source.next_batch() is not None:
            pass
    source.close()
    assert [a.outcome for a in ctx.attempts] == ["answered"]


async def test_first_content_buffers_role_only_chunks() -> None:
    class Source:
        truncated = False
        dropped: tuple[str, ...] = ()

        def __init__(self) -> None:
            self.batches = [[b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'],
                            [b'{"choices":[{"index":0,"delta":{"content":"Hi"}}]}'], None]

        async def next_batch(self) -> list[bytes] | None:
            return self.batches.pop(0)

        def close(self) -> None:
            return None

    first = await first_content(Source(), "X")
    assert first is not None and len(first) == 2


async def test_error_event_before_content_is_a_failover_able_error() -> None:
    class Source:
        truncated = False
        dropped: tuple[str, ...] = ()

        async def next_batch(self) -> list[bytes] | None:
            return [b'{"error":{"message":"Overloaded","type":"server_error","code":529}}']

        def close(self) -> None:
            return None

    with pytest.raises(UpstreamError) as info:
        await first_content(Source(), "X")
    assert classify(info.value) == "retry"


@pytest.mark.parametrize("bad", [b'{"choices":[{"index":0,"delta":{"content":"Hi', b'{"a":1}\n{"b":2}', b"[1]"])
async def test_malformed_event_before_content_is_a_failover_able_error(bad: bytes) -> None:
    class Source:
        truncated = False
        dropped: tuple[str, ...] = ()

        async def next_batch(self) -> list[bytes] | None:
            return [b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}', bad]

        def close(self) -> None:
            return None

    with pytest.raises(UpstreamError) as info:
        await first_content(Source(), "X")
    assert info.value.code == "upstream_stream_malformed" and classify(info.value) == "retry"
