"""Name resolution: which vendor routes may serve a model name, in their default order, and why.

A model is named as an alias, a routing policy (``support-bot``), a catalog id
(``openai/gpt-4.1-mini`` - the lab's name for it), or ``vendor/vendor-model-id``
(``groq/llama-3.3-70b-versatile``, ``ollama/llama3.2``). Resolution is a pure
function of the name, the catalog, the policies and the live vendors, so it is
cached per name: the hot path pays one dict lookup. The routing engine
(:mod:`interlock.routing.engine`) then filters and ranks these candidates for
each request - what a request needs (tools, context) is not known here.
"""

from __future__ import annotations

from collections.abc import Mapping

from interlock.catalog import Catalog
from interlock.config import VendorConfig
from interlock.core.errors import GatewayError, ModelNotFound, NoRouteAvailable
from interlock.core.model import Model
from interlock.core.plan import SIMULATOR, Plan, Target
from interlock.core.policy import Policy
from interlock.core.vendor import VendorRuntime

_CACHE_LIMIT = 4096


class Planner:
    def __init__(
        self,
        catalog: Catalog,
        live: Mapping[str, VendorRuntime],
        configured: Mapping[str, VendorConfig],
        aliases: Mapping[str, str],
        policies: Mapping[str, Policy] | None = None,
    ) -> None:
        self.catalog = catalog
        self.live = live
        self.configured = configured
        self.aliases = aliases
        self.policies: Mapping[str, Policy] = policies or {}
        self._cache: dict[str, Plan] = {}

    def replace(self, other: Planner) -> None:
        """Take ``other``'s vendors' configuration, aliases and policies (a config reload). One synchronous
        step: a request planned on this event loop sees the old names or the new ones, never a mix."""
        self.configured = other.configured
        self.aliases = other.aliases
        self.policies = other.policies
        self._cache = {}

    def plan(self, name: str) -> Plan:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        policy = self.policies.get(name)
        plan = self._policy(name, policy) if policy is not None else self._resolve(name)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[name] = plan
        return plan

    def _policy(self, name: str, policy: Policy) -> Plan:
        """A policy's targets, in its order; a target that cannot be served here is explained, not fatal."""
        targets: list[Target] = []
        seen: set[str] = set()
        why = [f"'{name}' is a routing policy ({policy.strategy}) over {len(policy.targets)} targets"]
        rule = policy.difficulty
        strong = frozenset(rule.strong) if rule is not None else frozenset()
        tiers: dict[str, str] = {}
        for entry in policy.targets:
            try:
                plan = self._resolve(entry.name)
            except GatewayError as err:
                why.append(f"{entry.name}: {err.message}")
                continue
            for target in plan.targets:
                if target.key in seen:
                    continue
                seen.add(target.key)
                targets.append(_weighted(target, entry.weight) if entry.weight != 1.0 else target)
                if rule is not None:
                    tiers[target.key] = "strong" if entry.name in strong else "weak"
        if not targets:
            raise NoRouteAvailable(f"No target of the policy '{name}' can be served here: " + "; ".join(why[1:]),
                                   param="model")
        if rule is not None:
            for tier in ("weak", "strong"):
                if tier not in tiers.values():
                    why.append(f"no target of the {tier} tier can be served here")
        return Plan(name, tuple(targets), tuple(why), policy, tiers)

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
        if found is None and config.like is not None:
            found = self.catalog.by_vendor_model(config.like, vendor_model)  # an instance of a built-in vendor
        if runtime is None:
            simulator = self.live.get(SIMULATOR)
            if found is not None and simulator is not None:
                cat_model, route = found
                why.append(f"{config.spec.name} is not live here ({config.why_not_live()}); "
                           f"the simulator answers for {cat_model.id}, priced as {config.spec.name}")
                return Plan(name, (Target(simulator, cat_model.id, cat_model, route.price, route),), tuple(why))
            if found is None:
                raise ModelNotFound(
                    f"The model '{name}' is not in the catalog, and {config.spec.name} is not live here to pass it "
                    f"through ({config.why_not_live()}).", param="model")
            raise NoRouteAvailable(f"The vendor '{vendor_id}' is not available here ({config.why_not_live()}).",
                                   param="model")
        if found is not None:
            cat_model, route = found
            why.append(f"{config.spec.name} serves '{vendor_model}' (catalog model {cat_model.id})")
            target = Target(runtime, vendor_model, cat_model, route.price, route)
        else:
            why.append(f"'{vendor_model}' is passed to {config.spec.name} as named (not in the catalog: cost unknown)")
            target = Target(runtime, vendor_model, None, None)
        return Plan(name, (target,), tuple(why))

    def _catalog_model(self, name: str, model: Model, why: list[str]) -> Plan:
        targets: list[Target] = []
        reference = model.reference_route
        routes = sorted(model.routes, key=lambda r: (r is not reference, r.vendor))
        skipped: list[str] = []
        seen: set[str] = set()
        own = {route.vendor for route in routes}
        for route in routes:
            runtime = self.live.get(route.vendor)
            if runtime is None:
                config = self.configured.get(route.vendor)
                if config is not None and route.vendor not in seen:
                    skipped.append(f"{config.spec.name} ({config.why_not_live()})")
                seen.add(route.vendor)
            else:
                targets.append(Target(runtime, route.vendor_model_id, model, route.price, route))
            # Further instances of this vendor (``like:``, say one per region) serve its catalog routes too,
            # unless the catalog lists a route of their own.
            targets.extend(Target(clone, route.vendor_model_id, model, route.price, route)
                           for clone in self._instances_of(route.vendor) if clone.id not in own)
        if targets:
            why.append(f"{model.id} is served by {', '.join(t.vendor.spec.name for t in targets)}")
            if skipped:
                why.append("not available here: " + "; ".join(skipped))
            return Plan(name, tuple(targets), tuple(why))
        simulator = self.live.get(SIMULATOR)
        if simulator is not None:
            why.append(f"no live vendor serves {model.id}; the simulator answers in its place")
            price = reference.price if reference is not None else None
            return Plan(name, (Target(simulator, model.id, model, price, reference),), tuple(why))
        vendors = "; ".join(skipped) or "no vendor interlock can reach lists it"
        raise NoRouteAvailable(f"No live vendor can serve '{model.id}' here: {vendors}.", param="model")

    def _instances_of(self, vendor: str) -> list[VendorRuntime]:
        """The live vendors configured ``like: vendor``."""
        return [self.live[vid] for vid, config in self.configured.items()
                if config.like == vendor and vid in self.live]

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
        return Plan(name, (Target(simulator, model.id, model, reference.price if reference else None, reference),),
                    tuple(why))


def _weighted(target: Target, weight: float) -> Target:
    return Target(target.vendor, target.vendor_model, target.model, target.price, target.route, weight)
