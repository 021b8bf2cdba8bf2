"""A catalog model and its routes: the facts every layer reads about what it runs.

A :class:`Model` is a canonical ``lab/model`` id with provider-independent facts;
each :class:`Route` is one vendor serving it under that vendor's own model id,
with that vendor's price, limits and effective capabilities. Loading, lookup and
ordering live in :mod:`interlock.catalog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from interlock.core.pricing import Price


@dataclass(frozen=True, slots=True)
class Route:
    """One vendor serving a model: the vendor's id for it, its price and limits.

    ``capabilities`` are effective for this vendor (a vendor may not offer tools
    or caching for a model the lab supports them on). ``status`` is models.dev's
    lifecycle flag ("deprecated", "beta", "alpha") or None; ``source`` names where
    the route came from (a models.dev provider id, or ``"config"``).
    """

    vendor: str
    vendor_model_id: str
    price: Price
    context_window: int | None = None
    max_output: int | None = None
    capabilities: frozenset[str] = frozenset()
    zdr: bool | None = None
    max_input: int | None = None
    status: str | None = None
    source: str | None = None

    @property
    def deprecated(self) -> bool:
        return self.status == "deprecated"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "vendor": self.vendor,
            "id": self.vendor_model_id,
            "price": self.price.to_json(),
        }
        _put(out, "context", self.context_window)
        _put(out, "output", self.max_output)
        _put(out, "input_limit", self.max_input)
        out["caps"] = sorted(self.capabilities)
        _put(out, "zdr", self.zdr)
        _put(out, "status", self.status)
        _put(out, "source", self.source)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Route:
        return cls(
            vendor=data["vendor"],
            vendor_model_id=data["id"],
            price=Price.from_json(data.get("price", {})),
            context_window=data.get("context"),
            max_output=data.get("output"),
            capabilities=frozenset(data.get("caps", ())),
            zdr=data.get("zdr"),
            max_input=data.get("input_limit"),
            status=data.get("status"),
            source=data.get("source"),
        )


@dataclass(frozen=True, slots=True)
class Model:
    """A canonical model and every route to it.

    Facts (limits, modalities, capabilities) are the lab's; route-level values
    can differ. ``reference_route`` is the route the simulator and budget
    estimates price traffic at: the lab's own vendor if it serves the model,
    else the cheapest live-looking (non-deprecated, priced) route.
    """

    id: str
    lab: str
    name: str
    family: str | None = None
    release_date: str | None = None
    knowledge: str | None = None
    context_window: int | None = None
    max_output: int | None = None
    input_modalities: tuple[str, ...] = ("text",)
    output_modalities: tuple[str, ...] = ("text",)
    capabilities: frozenset[str] = frozenset()
    open_weights: bool = False
    benchmarks: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    routes: tuple[Route, ...] = ()
    reference_route: Route | None = None
    max_input: int | None = None
    reference_vendor: str | None = None

    def __hash__(self) -> int:
        return hash(self.id)

    def route(self, vendor: str) -> Route | None:
        """The preferred route of ``vendor`` (routes are kept in preference order)."""
        for r in self.routes:
            if r.vendor == vendor:
                return r
        return None

    def routes_for(self, vendor: str) -> tuple[Route, ...]:
        """Every route of ``vendor`` (e.g. Bedrock's regional inference profiles)."""
        return tuple(r for r in self.routes if r.vendor == vendor)

    @property
    def vendors(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for r in self.routes:
            seen.setdefault(r.vendor, None)
        return tuple(seen)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "lab": self.lab, "name": self.name}
        _put(out, "family", self.family)
        _put(out, "release_date", self.release_date)
        _put(out, "knowledge", self.knowledge)
        _put(out, "context", self.context_window)
        _put(out, "output", self.max_output)
        _put(out, "input_limit", self.max_input)
        out["in"] = list(self.input_modalities)
        out["out"] = list(self.output_modalities)
        out["caps"] = sorted(self.capabilities)
        if self.open_weights:
            out["open_weights"] = True
        if self.benchmarks:
            out["bench"] = dict(sorted(self.benchmarks.items()))
        _put(out, "reference_vendor", self.reference_vendor)
        out["routes"] = [r.to_json() for r in self.routes]
        return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value
