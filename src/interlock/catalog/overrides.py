"""The config's ``catalog:`` section: negotiated prices, private deployments, new models.

Overrides are applied once at start to the packaged catalog; every error names
the offending key path (``catalog.models['x'].routes.openai.price.inptu``).
See :meth:`Catalog.with_overrides` for the shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from interlock.catalog.catalog import CAPABILITIES, Catalog, with_routes
from interlock.core.model import Model, Route
from interlock.core.pricing import PRICE_FIELDS, Price, PriceTier, usd_to_micro

_MODEL_KEYS = frozenset(
    {
        "name",
        "lab",
        "family",
        "release_date",
        "knowledge",
        "context_window",
        "max_output",
        "max_input",
        "input_modalities",
        "output_modalities",
        "capabilities",
        "open_weights",
        "reference_vendor",
        "routes",
    }
)
_ROUTE_KEYS = frozenset(
    {"vendor_model_id", "price", "context_window", "max_output", "max_input", "capabilities", "zdr", "remove"}
)
#: Every per-token rate, and ``request`` (per 1,000 requests).
_PRICE_KEYS = frozenset((*PRICE_FIELDS, "request"))


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise ValueError(f"{where}: keys must be strings, got {key!r}")
    return value


def _check_keys(value: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in value:
        if key not in allowed:
            raise ValueError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _opt_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(value))


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _caps(value: Any, where: str) -> frozenset[str]:
    caps = frozenset(_str_tuple(value, where))
    unknown = caps - CAPABILITIES
    if unknown:
        raise ValueError(
            f"{where}: unknown capabilities {sorted(unknown)} (known: {', '.join(sorted(CAPABILITIES))})"
        )
    return caps


def _price_patch(base: Price, value: Any, where: str) -> Price:
    spec = _mapping(value, where)
    _check_keys(spec, _PRICE_KEYS | {"tiers"}, where)
    updates: dict[str, Any] = {}
    for key in _PRICE_KEYS:
        if key in spec:
            updates[key] = None if spec[key] is None else usd_to_micro(spec[key], what=f"{where}.{key}")
    if "tiers" in spec:
        tiers = []
        if not isinstance(spec["tiers"], list):
            raise ValueError(f"{where}.tiers: expected a list")
        for i, tier in enumerate(spec["tiers"]):
            tw = f"{where}.tiers[{i}]"
            t = _mapping(tier, tw)
            _check_keys(t, (_PRICE_KEYS - {"citation", "request"}) | {"above"}, tw)
            above = _opt_int(t.get("above"), f"{tw}.above")
            if above is None:
                raise ValueError(f"{tw}.above: required")
            rates = {k: usd_to_micro(v, what=f"{tw}.{k}") for k, v in t.items() if k != "above"}
            tiers.append(PriceTier(above=above, **rates))
        updates["tiers"] = tuple(sorted(tiers, key=lambda t: t.above))
    return replace(base, **updates)


def _route_patch(route: Route, spec: Mapping[str, Any], where: str) -> Route:
    updates: dict[str, Any] = {"source": "config"}
    if "price" in spec:
        updates["price"] = _price_patch(route.price, spec["price"], f"{where}.price")
    for key in ("context_window", "max_output", "max_input"):
        if key in spec:
            updates[key] = _opt_int(spec[key], f"{where}.{key}")
    if "capabilities" in spec:
        updates["capabilities"] = _caps(spec["capabilities"], f"{where}.capabilities")
    if "zdr" in spec:
        updates["zdr"] = None if spec["zdr"] is None else _bool(spec["zdr"], f"{where}.zdr")
    return replace(route, **updates)


def _apply_routes(model: Model, routes_spec: Any, where: str) -> list[Route]:
    routes = list(model.routes)
    for vendor, raw in _mapping(routes_spec, where).items():
        rw = f"{where}.{vendor}"
        _str(vendor, rw)
        spec = _mapping(raw, rw)
        _check_keys(spec, _ROUTE_KEYS, rw)
        wanted = spec.get("vendor_model_id")
        if wanted is not None:
            _str(wanted, f"{rw}.vendor_model_id")
        targets = [
            i for i, r in enumerate(routes) if r.vendor == vendor and wanted in (None, r.vendor_model_id)
        ]
        if spec.get("remove") is True:
            routes = [r for i, r in enumerate(routes) if i not in targets]
            continue
        if "remove" in spec and spec["remove"] is not False:
            raise ValueError(f"{rw}.remove: expected true or false")
        if not targets:
            template = model.reference_route
            new = Route(
                vendor=vendor,
                vendor_model_id=wanted or model.id.split("/", 1)[-1],
                price=Price(),
                context_window=model.context_window,
                max_output=model.max_output,
                max_input=model.max_input,
                capabilities=template.capabilities if template is not None else model.capabilities,
            )
            if "price" not in spec:
                raise ValueError(f"{rw}.price: required for a new route")
            routes.append(_route_patch(new, spec, rw))
        else:
            for i in targets:
                routes[i] = _route_patch(routes[i], spec, rw)
    return routes


def _new_model(model_id: str, spec: Mapping[str, Any], where: str) -> Model:
    lab, sep, _ = model_id.partition("/")
    if not sep or not lab:
        raise ValueError(f"{where}: a new model id must have the form 'lab/model'")
    name = spec.get("name", model_id)
    return Model(
        id=model_id,
        lab=_str(spec.get("lab", lab), f"{where}.lab"),
        name=_str(name, f"{where}.name"),
        capabilities=frozenset({"streaming"}),
    )


def _patch_model(model: Model, spec: Mapping[str, Any], where: str) -> Model:
    updates: dict[str, Any] = {}
    for key in ("name", "lab", "family", "release_date", "knowledge", "reference_vendor"):
        if key in spec:
            updates[key] = _str(spec[key], f"{where}.{key}")
    for key in ("context_window", "max_output", "max_input"):
        if key in spec:
            updates[key] = _opt_int(spec[key], f"{where}.{key}")
    for key in ("input_modalities", "output_modalities"):
        if key in spec:
            updates[key] = _str_tuple(spec[key], f"{where}.{key}")
    if "capabilities" in spec:
        updates["capabilities"] = _caps(spec["capabilities"], f"{where}.capabilities")
    if "open_weights" in spec:
        updates["open_weights"] = _bool(spec["open_weights"], f"{where}.open_weights")
    patched = replace(model, **updates)
    routes = _apply_routes(patched, spec["routes"], f"{where}.routes") if "routes" in spec else patched.routes
    if not routes:
        raise ValueError(f"{where}.routes: a model needs at least one route")
    result = with_routes(patched, routes)
    if result.reference_vendor is not None and result.route(result.reference_vendor) is None:
        raise ValueError(f"{where}.reference_vendor: {result.reference_vendor!r} has no route for this model")
    return result


def apply_overrides(catalog: Catalog, overrides: Mapping[str, Any]) -> Catalog:
    top = _mapping(overrides, "catalog")
    _check_keys(top, frozenset({"models", "vendors"}), "catalog")
    models = {m.id: m for m in catalog.models}
    for vendor, raw in _mapping(top.get("vendors", {}), "catalog.vendors").items():
        where = f"catalog.vendors.{vendor}"
        spec = _mapping(raw, where)
        _check_keys(spec, frozenset({"zdr"}), where)
        if "zdr" in spec:
            zdr = _bool(spec["zdr"], f"{where}.zdr")
            for model_id, model in models.items():
                if vendor in model.vendors:
                    routes = [replace(r, zdr=zdr) if r.vendor == vendor else r for r in model.routes]
                    models[model_id] = with_routes(model, routes)
    for model_id, raw in _mapping(top.get("models", {}), "catalog.models").items():
        where = f"catalog.models[{model_id!r}]"
        spec = _mapping(raw, where)
        _check_keys(spec, _MODEL_KEYS, where)
        base = models.get(model_id) or _new_model(model_id, spec, where)
        models[model_id] = _patch_model(base, spec, where)
    return Catalog(models.values(), catalog.meta)
