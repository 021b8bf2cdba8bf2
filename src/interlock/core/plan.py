"""Targets and plans: which vendor routes may serve a model name, in their default order, and why.

A :class:`Plan` is what name resolution (:mod:`interlock.routing.planner`) makes
of a model name; the routing engine filters and ranks its :class:`Target` list
for each request, and dispatch walks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from interlock.core.model import Model, Route
from interlock.core.policy import Policy
from interlock.core.pricing import Price
from interlock.core.vendor import VendorRuntime

SIMULATOR = "simulator"


@dataclass(frozen=True, slots=True)
class Target:
    vendor: VendorRuntime
    #: The id the vendor knows the model by.
    vendor_model: str
    #: Catalog facts, when the catalog knows the model.
    model: Model | None
    #: What this route costs; for the simulator, what the model's reference vendor would charge.
    price: Price | None
    #: The catalog route (limits, effective capabilities, ZDR); for the simulator, the reference route.
    route: Route | None = None
    #: Weight in a ``weighted`` policy (1 elsewhere).
    weight: float = 1.0
    #: ``vendor/vendor_model``: the key of this target's circuit breaker and live statistics.
    key: str = field(init=False, compare=False)
    #: Effective capabilities; None when unknown (a model passed through by name).
    capabilities: frozenset[str] | None = field(init=False, compare=False)
    context_window: int | None = field(init=False, compare=False)
    #: The most output tokens one answer may have on this route (None when unknown).
    max_output: int | None = field(init=False, compare=False)
    zdr: bool | None = field(init=False, compare=False)
    #: Lower-case vendor id, as OpenRouter-style ``provider`` slugs are compared.
    slug: str = field(init=False, compare=False)
    vendor_id: str = field(init=False, compare=False)
    #: The catalog id (``lab/model``), or ``vendor/vendor_model`` for a model the catalog does not know.
    model_id: str = field(init=False, compare=False)
    simulated: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: the routing engine reads these for every candidate of every request.
        route, model = self.route, self.model
        caps = route.capabilities if route is not None and route.capabilities else (
            model.capabilities if model is not None else None)
        via_tools = self.vendor.spec.via_tools
        if caps is not None and via_tools and "tools" in caps:
            caps = caps | via_tools
        window = route.context_window if route is not None and route.context_window else (
            model.context_window if model is not None else None)
        vendor_id = self.vendor.id
        key = f"{vendor_id}/{self.vendor_model}"
        object.__setattr__(self, "vendor_id", vendor_id)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "model_id", model.id if model is not None else key)
        object.__setattr__(self, "simulated", vendor_id == SIMULATOR or self.vendor.spec.type == SIMULATOR)
        object.__setattr__(self, "capabilities", caps)
        object.__setattr__(self, "context_window", window)
        object.__setattr__(self, "max_output", route.max_output if route is not None and route.max_output else (
            model.max_output if model is not None else None))
        object.__setattr__(self, "zdr", route.zdr if route is not None else None)
        object.__setattr__(self, "slug", vendor_id.lower())


@dataclass(frozen=True, slots=True)
class Plan:
    requested: str
    targets: tuple[Target, ...]
    explanation: tuple[str, ...]
    #: The routing policy the name resolved to, if any.
    policy: Policy | None = None
    #: Target key -> "weak" or "strong", for a ``difficulty`` policy's plan (empty for any other).
    tiers: Mapping[str, str] = field(default_factory=dict)
    #: ``explanation`` joined, as the request log stores it (plans are cached: joined once).
    explanation_text: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "explanation_text", "; ".join(self.explanation))
