"""Property tests: whatever the vendors do, a filtered target is never tried, attempts follow the
plan, and a request is billed once, for the attempt that answered."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.core.errors import GatewayError
from interlock.core.pricing import cost_of
from interlock.core.usage import usage_from_openai
from interlock.pipeline.settle import price_openai_usage
from interlock.routing.circuit import BreakerSettings
from tests.test_routing_fixtures import MODEL, chat, simulator, world

FAULTS = [None, "error=503", "error=500", "refuse", "reset", "stop_after=0", "error=429;retry_after=0.2",
          "error=429;retry_after=60", "error=400", "rate=0.5;error=503"]
VENDORS = ("sima", "simb", "simc", "simd")

vendor_st = st.fixed_dictionaries({
    "fault": st.sampled_from(FAULTS),
    "tools": st.booleans(),
    "window": st.sampled_from([40, 1_000_000]),
    "zdr": st.booleans(),
    "price": st.sampled_from([0.1, 0.4, 2.0]),
})
scenario_st = st.fixed_dictionaries({
    "vendors": st.lists(vendor_st, min_size=1, max_size=4),
    "tools": st.booleans(),
    "zdr": st.booleans(),
    "stream": st.booleans(),
    "sort": st.sampled_from([None, "price", "latency", "throughput"]),
    "max_tokens": st.sampled_from([None, 5, 100]),
    "seed": st.integers(0, 1000),
})
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]


def build(scenario: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    routes: dict[str, dict[str, Any]] = {}
    transports = {}
    for vid, spec in zip(VENDORS, scenario["vendors"], strict=False):
        caps = ["streaming", "temperature"] + (["tools"] if spec["tools"] else [])
        routes[vid] = {"capabilities": caps, "context_window": spec["window"], "zdr": spec["zdr"],
                       "price": {"input": spec["price"], "output": spec["price"] * 4}}
        faults = {MODEL: spec["fault"]} if spec["fault"] else None
        transports[vid] = simulator(faults, seed=scenario["seed"])
    w = world(transports, routes=routes, breaker=BreakerSettings(min_requests=3))
    request = chat()
    if scenario["tools"]:
        request["tools"] = TOOLS
    if scenario["stream"]:
        request["stream"] = True
    if scenario["max_tokens"]:
        request["max_tokens"] = scenario["max_tokens"]
    provider: dict[str, Any] = {}
    if scenario["zdr"]:
        provider["zdr"] = True
    if scenario["sort"]:
        provider["sort"] = scenario["sort"]
    if provider:
        request["provider"] = provider
    return w, request


async def one_request(w: Any, request: dict[str, Any]) -> tuple[Any, Any]:
    try:
        ctx, canonical = w.context(dict(request))
    except GatewayError as err:
        return None, err
    try:
        if request.get("stream"):
            source, first = await w.dispatcher.stream(ctx, canonical, {})
            payloads = list(first or [])
            while True:
                batch = await source.next_batch()
                if batch is None:
                    break
                payloads.extend(batch)
            source.close()
            usage = next((p for p in payloads if b'"usage":{' in p), None)
            return ctx, usage
        completion = await w.dispatcher.complete(ctx, canonical, {})
        return ctx, completion.data
    except GatewayError as err:
        return ctx, err


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_st)
def test_routing_invariants(scenario: dict[str, Any]) -> None:
    w, request = build(scenario)

    async def main() -> None:
        for _ in range(3):  # several requests, so circuits open and half-open along the way
            ctx, outcome = await one_request(w, request)
            if ctx is None:
                assert isinstance(outcome, GatewayError) and outcome.status in (400, 503)
                continue
            trace = ctx.routing
            assert trace is not None
            filtered = {c.target.key for c in trace.candidates if c.reason is not None}
            planned = [t.key for t in trace.order]
            tried = [a.target for a in ctx.attempts]
            # 1. A filtered target is never tried.
            assert not filtered & set(tried)
            # 2. Attempts follow the plan: the targets appear in plan order (retries repeat in place).
            positions = [planned.index(t) for t in tried]
            assert positions == sorted(positions)
            # 3. At most one attempt answered, it is the last one, and it is the context's target.
            answered = [a for a in ctx.attempts if a.outcome == "answered"]
            assert len(answered) <= 1
            if isinstance(outcome, GatewayError):
                assert not answered
                continue
            assert answered and ctx.attempts[-1] is answered[0]
            assert ctx.target is not None and ctx.target.key == answered[0].target
            # 4. Billed once, at the answering target's price.
            if isinstance(outcome, dict):
                usage = outcome["usage"]
                price_openai_usage(ctx, usage)
                assert ctx.target.price is not None
                assert ctx.cost == cost_of(ctx.target.price, usage_from_openai(usage))

    asyncio.run(main())
