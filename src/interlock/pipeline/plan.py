"""Plan: which vendor routes may serve a request, in order, and why.

A model is named as an alias, a catalog id (``openai/gpt-4.1-mini`` - the
lab's name for it), or ``vendor/vendor-model-id`` (``groq/llama-3.3-70b-versatile``,
``ollama/llama3.2``). Resolution is a pure function of the name, the catalog
and the live vendors, so it is cached per name: the hot path pays one dict
lookup. Routing policies and strategies (a later stage) reorder and filter the
targets this produces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from interlock.catalog import Catalog, Model, Price
from interlock.config import VendorConfig
from interlock.errors import ModelNotFound, NoRouteAvailable
from interlock.vendors.registry import VendorRuntime

SIMULATOR = "simulator"
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Target:
    vendor: VendorRuntime
    #: The id the vendor knows the model by.
    vendor_model: str
    #: Catalog facts, when the catalog knows the model.
    model: Model | None
    #: What this route costs; for the simulator, what the model's reference vendor would charge.
    price: Price | None

    @property
    def model_id(self) -> str:
        return self.model.id if self.model is not None else f"{self.vendor.id}/{self.vendor_model}"

    @property
    def simulated(self) -> bool:
        return self.vendor.id == SIMULATOR


@dataclass(frozen=True, slots=True)
class Plan:
    requested: str
    targets: tuple[Target, ...]
    explanation: tuple[str, ...]


class Planner:
    def __init__(
        self,
        catalog: Catalog,
        live: Mapping[str, VendorRuntime],
        configured: Mapping[str, VendorConfig],
        aliases: Mapping[str, str],
    ) -> None:
        self.catalog = catalog
        self.live = live
        self.configured = configured
        self.aliases = aliases
        self._cache: dict[str, Plan] = {}

    def plan(self, name: str) -> Plan:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        plan = self._resolve(name)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[name] = plan
        return plan

    def _resolve(self, name: str) -> Plan:
        why: list[str] = []
        resolved = name
        alias = self.aliases.get(name)
        if alias is not None:
            why.append(f"'{name}' is an alias for '{alias}'")
            resolved = alias

        model = self.catalog.get(resolved)
        if model is not None:
            return self._catalog_model(name, model, why)

        vendor_id, sep, vendor_model = resolved.partition("/")
        if not sep or not vendor_model:
            raise ModelNotFound(
                f"The model '{name}' does not exist. Name a model as vendor/model (e.g. openai/gpt-4.1-mini) "
                "or use an alias; GET /v1/models lists them.", param="model")
        if vendor_id == SIMULATOR:
            return self._simulated(name, vendor_model, why)
        config = self.configured.get(vendor_id)
        if config is None:
            raise ModelNotFound(
                f"The model '{name}' does not exist: '{vendor_id}' is neither a catalog lab nor a configured vendor.",
                param="model")
        runtime = self.live.get(vendor_id)
        found = self.catalog.by_vendor_model(vendor_id, vendor_model)
        if runtime is None:
            simulator = self.live.get(SIMULATOR)
            if found is not None and simulator is not None:
                cat_model, route = found
                why.append(f"{config.spec.name} is not live here ({config.why_not_live()}); "
                           f"the simulator answers for {cat_model.id}, priced as {config.spec.name}")
                return Plan(name, (Target(simulator, cat_model.id, cat_model, route.price),), tuple(why))
            if found is None:
                raise ModelNotFound(
                    f"The model '{name}' is not in the catalog, and {config.spec.name} is not live here to pass it "
                    f"through ({config.why_not_live()}).", param="model")
            raise NoRouteAvailable(f"The vendor '{vendor_id}' is not available here ({config.why_not_live()}).",
                                   param="model")
        if found is not None:
            cat_model, route = found
            why.append(f"{config.spec.name} serves '{vendor_model}' (catalog model {cat_model.id})")
            target = Target(runtime, vendor_model, cat_model, route.price)
        else:
            why.append(f"'{vendor_model}' is passed to {config.spec.name} as named (not in the catalog: cost unknown)")
            target = Target(runtime, vendor_model, None, None)
        return Plan(name, (target,), tuple(why))

    def _catalog_model(self, name: str, model: Model, why: list[str]) -> Plan:
        targets: list[Target] = []
        reference = model.reference_route
        routes = sorted(model.routes, key=lambda r: (r is not reference, r.vendor))
        skipped: list[str] = []
        for route in routes:
            runtime = self.live.get(route.vendor)
            if runtime is None:
                config = self.configured.get(route.vendor)
                if config is not None:
                    skipped.append(f"{config.spec.name} ({config.why_not_live()})")
                continue
            targets.append(Target(runtime, route.vendor_model_id, model, route.price))
        if targets:
            why.append(f"{model.id} is served by {', '.join(t.vendor.config.spec.name for t in targets)}")
            if skipped:
                why.append("not available here: " + "; ".join(skipped))
            return Plan(name, tuple(targets), tuple(why))
        simulator = self.live.get(SIMULATOR)
        if simulator is not None:
            why.append(f"no live vendor serves {model.id}; the simulator answers in its place")
            price = reference.price if reference is not None else None
            return Plan(name, (Target(simulator, model.id, model, price),), tuple(why))
        vendors = "; ".join(skipped) or "no vendor interlock can reach lists it"
        raise NoRouteAvailable(f"No live vendor can serve '{model.id}' here: {vendors}.", param="model")

    def _simulated(self, name: str, model_id: str, why: list[str]) -> Plan:
        simulator = self.live.get(SIMULATOR)
        if simulator is None:
            raise NoRouteAvailable("The simulator is not enabled here (set simulator.enabled: true in the config).",
                                   param="model")
        model = self.catalog.get(model_id)
        if model is None:
            raise ModelNotFound(f"The simulator serves catalog models; '{model_id}' is not one.", param="model")
        reference = model.reference_route
        why.append(f"the simulator answers for {model.id}, priced as {reference.vendor if reference else 'unknown'}")
        return Plan(name, (Target(simulator, model.id, model, reference.price if reference else None),), tuple(why))
