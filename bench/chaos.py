"""Chaos experiment: a routing policy over two simulated vendors while one of them misbehaves.

    .venv/bin/python bench/chaos.py [--seed 7] [--minutes 5] [--rps 10]

Vendor ``flaky`` fails 30% of requests (HTTP 503, simulator fault
``rate=0.3;error=503``) for the whole run and is down entirely (connection
refused) for one minute in the middle; vendor ``steady`` is healthy. The
policy prefers ``flaky`` (priority order), retries once with backoff and fails
over to ``steady``; circuit breakers route around ``flaky`` while it is down
and probe it with real traffic to bring it back. Target: >= 99.9% success.

Compressed time: the run is in simulated time - the simulators answer
instantly (``time_scale: 0``), the circuit breakers, backoff sleeps and
statistics read a virtual clock that advances 1/rps per request and by each
backoff. Five simulated minutes take a few seconds. Everything is seeded, so
a run with the same arguments replays exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections import Counter
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interlock.catalog import load_catalog
from interlock.config import VendorConfig
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError
from interlock.core.policy import Policy, PolicyTarget, Retry
from interlock.core.vendor import Timeouts, VendorRuntime, VendorSpec
from interlock.pipeline.dispatch import Dispatcher
from interlock.routing.circuit import OPEN, BreakerSettings, Circuits
from interlock.routing.engine import RoutingEngine
from interlock.routing.planner import Planner
from interlock.routing.stats import LiveStats
from interlock.simulator.settings import SimulatorSettings
from interlock.simulator.transport import SimulatorTransport
from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
from interlock.vendors.registry import runtime as vendor_runtime
from interlock.vendors.transport import UpstreamResponse

MODEL = "openai/gpt-4.1-mini"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Outage:
    """``flaky``'s transport: 30% errors always, connection refused inside the outage window."""

    def __init__(self, clock: Clock, start: float, end: float, seed: int) -> None:
        catalog = load_catalog()
        self.clock, self.start, self.end = clock, start, end
        self.flaky = SimulatorTransport(SimulatorSettings.from_config(
            {"time_scale": 0, "seed": seed, "faults": {"*": "rate=0.3;error=503"}}), catalog)
        self.down = SimulatorTransport(SimulatorSettings.from_config(
            {"time_scale": 0, "seed": seed, "faults": {"*": "refuse"}}), catalog)

    async def request(self, method: str, url: str, headers: Any, body: bytes, timeouts: Timeouts) -> UpstreamResponse:
        inner = self.down if self.start <= self.clock() < self.end else self.flaky
        return await inner.request(method, url, headers, body, timeouts)

    async def close(self) -> None:
        return None


def runtime(vid: str, transport: Any) -> VendorRuntime:
    spec = VendorSpec(vid, vid, "openai", "http://simulator.internal/v1", needs_key=False, auth="none")
    config = VendorConfig(spec, "http://simulator.internal/v1", None, None, MappingProxyType({}), Timeouts(), True,
                          explicitly_configured=True)
    return vendor_runtime(config, OpenAICompatAdapter(config, transport))


async def experiment(seed: int, minutes: float, rps: float) -> int:
    clock = Clock()
    duration = minutes * 60
    outage = (duration / 2 - 30, duration / 2 + 30)
    routes = {v: {"vendor_model_id": MODEL, "price": {"input": 0.4, "output": 1.6}} for v in ("flaky", "steady")}
    catalog = load_catalog().with_overrides({"models": {MODEL: {"routes": routes}}})
    live = {"flaky": runtime("flaky", Outage(clock, *outage, seed)),
            "steady": runtime("steady", SimulatorTransport(SimulatorSettings.from_config(
                {"time_scale": 0, "seed": seed}), catalog))}
    policy = Policy("resilient", (PolicyTarget(f"flaky/{MODEL}"), PolicyTarget(f"steady/{MODEL}")),
                    retry=Retry(attempts=2, backoff_s=0.05, max_backoff_s=1.0), timeout_s=30.0)
    planner = Planner(catalog, live, {k: v.config for k, v in live.items()}, {}, {"resilient": policy})
    circuits = Circuits(BreakerSettings(failure_rate=0.5, min_requests=10, window_s=10, cooldown_s=5), clock=clock)
    rng = random.Random(seed)
    engine = RoutingEngine(planner, circuits=circuits, stats=LiveStats(clock=clock), rng=rng.random)

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    dispatcher = Dispatcher(engine, sleep=sleep, clock=clock, rng=rng.random)
    total = int(duration * rps)
    ok = 0
    served: Counter[str] = Counter()
    attempts = 0
    opened = 0
    was_open = False
    in_outage = [0, 0]
    for i in range(total):
        clock.now = max(clock.now, i / rps)
        ctx = RequestContext("openai.chat")
        request = {"model": "resilient", "messages": [{"role": "user", "content": f"Request {i}: say hello."}]}
        try:
            canonical = engine.route(ctx, request)
            await dispatcher.complete(ctx, canonical, {})
            ok += 1
            assert ctx.target is not None
            served[ctx.target.vendor.id] += 1
            if outage[0] <= clock.now < outage[1]:
                in_outage[0] += 1
        except GatewayError:
            if outage[0] <= clock.now < outage[1]:
                in_outage[1] += 1
        attempts += sum(1 for a in ctx.attempts if a.outcome != "skipped")
        is_open = circuits.state(f"flaky/{MODEL}") == OPEN
        opened += is_open and not was_open
        was_open = is_open
    rate = ok / total
    print(f"chaos: {total} requests over {minutes:g} simulated minutes at {rps:g}/s (seed {seed}); "
          f"flaky fails 30%, down from t={outage[0]:.0f}s to t={outage[1]:.0f}s")
    print(f"  success          {ok}/{total} = {rate:.4%}")
    print(f"  during outage    {in_outage[0]} ok, {in_outage[1]} failed")
    print(f"  served by        {dict(served)}")
    print(f"  vendor calls     {attempts} ({attempts / total:.2f} per request)")
    print(f"  circuit opened   {opened} times")
    target = 0.999
    print(f"  target >= {target:.1%}: {'met' if rate >= target else 'MISSED'}")
    return 0 if rate >= target else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rps", type=float, default=10.0)
    args = parser.parse_args()
    return asyncio.run(experiment(args.seed, args.minutes, args.rps))


if __name__ == "__main__":
    raise SystemExit(main())
