"""Shared builders for the routing tests: simulated vendors in-process, a planner over them, an engine.

Two (or more) vendors are each a :class:`SimulatorTransport` with its own fault
config, registered as custom vendors (``sima``, ``simb``...) that the catalog
says serve ``openai/gpt-4.1-mini``. Nothing opens a socket; ``time_scale: 0``
keeps every simulated delay at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from interlock.catalog import Catalog, load_catalog
from interlock.config import VendorConfig
from interlock.core.context import RequestContext
from interlock.core.policy import Policy
from interlock.core.vendor import Timeouts, VendorRuntime, VendorSpec
from interlock.pipeline.dispatch import Dispatcher
from interlock.routing.circuit import BreakerSettings, Circuits
from interlock.routing.engine import RoutingEngine
from interlock.routing.planner import Planner
from interlock.routing.stats import LiveStats
from interlock.simulator.settings import SimulatorSettings
from interlock.simulator.transport import SimulatorTransport
from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
from interlock.vendors.registry import runtime
from interlock.vendors.transport import Transport

MODEL = "openai/gpt-4.1-mini"
USER = [{"role": "user", "content": "Say hello."}]


def vendor_config(vid: str, timeouts: Timeouts | None = None) -> VendorConfig:
    spec = VendorSpec(vid, vid.upper(), "openai", "http://simulator.internal/v1", needs_key=False, auth="none")
    return VendorConfig(spec=spec, base_url="http://simulator.internal/v1", api_key=None, key_source=None,
                        headers=MappingProxyType({}), timeouts=timeouts or Timeouts(), enabled=True,
                        explicitly_configured=True)


def simulator(faults: Mapping[str, Any] | None = None, catalog: Catalog | None = None,
              **settings: Any) -> SimulatorTransport:
    config: dict[str, Any] = {"time_scale": 0, "allow_fault_headers": True, "seed": 1, **settings}
    if faults:
        config["faults"] = dict(faults)
    return SimulatorTransport(SimulatorSettings.from_config(config), catalog or load_catalog())


def catalog_with(vendors: Mapping[str, Mapping[str, Any]], model: str = MODEL) -> Catalog:
    """The packaged catalog plus routes of ``model`` for the given vendors ({vendor: route override})."""
    routes = {vid: {"vendor_model_id": model, "price": {"input": 0.4, "output": 1.6}, **spec}
              for vid, spec in vendors.items()}
    return load_catalog().with_overrides({"models": {model: {"routes": routes}}})


@dataclass
class World:
    catalog: Catalog
    live: dict[str, VendorRuntime]
    engine: RoutingEngine
    dispatcher: Dispatcher
    sleeps: list[float] = field(default_factory=list)
    now: list[float] = field(default_factory=lambda: [1000.0])

    def clock(self) -> float:
        return self.now[0]

    def advance(self, seconds: float) -> None:
        self.now[0] += seconds

    def context(self, request: dict[str, Any]) -> tuple[RequestContext, dict[str, Any]]:
        ctx = RequestContext("openai.chat")
        ctx.requested_model = request["model"]
        ctx.stream = request.get("stream") is True
        return ctx, self.engine.route(ctx, request)


def world(transports: Mapping[str, Transport], *, routes: Mapping[str, Mapping[str, Any]] | None = None,
          policies: Mapping[str, Policy] | None = None, breaker: BreakerSettings | None = None,
          catalog: Catalog | None = None, timeouts: Timeouts | None = None, seed: float = 0.5) -> World:
    cat = catalog or catalog_with(routes if routes is not None else {vid: {} for vid in transports})
    live: dict[str, VendorRuntime] = {}
    configured: dict[str, VendorConfig] = {}
    for vid, transport in transports.items():
        config = configured[vid] = vendor_config(vid, timeouts)
        live[vid] = runtime(config, OpenAICompatAdapter(config, transport))
    w = World(cat, live, None, None)  # type: ignore[arg-type]
    planner = Planner(cat, live, configured, {}, policies or {})
    circuits = Circuits(breaker or BreakerSettings(), clock=w.clock)
    stats = LiveStats(clock=w.clock)
    w.engine = RoutingEngine(planner, circuits=circuits, stats=stats, rng=lambda: seed)

    async def sleep(seconds: float) -> None:
        w.sleeps.append(seconds)
        w.advance(seconds)

    w.dispatcher = Dispatcher(w.engine, sleep=sleep, clock=w.clock, rng=lambda: seed)
    return w


def chat(model: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": list(USER), **extra}
