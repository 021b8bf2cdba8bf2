"""Per-request routing overrides, OpenRouter-compatible.

Clients written for OpenRouter steer routing with fields in the request body:
the ``provider`` object, the ``models`` fallback array, ``route: "fallback"``
and the ``:floor`` / ``:nitro`` model suffixes. interlock honours them with
the same meaning, validates them (a wrong type is a 400 naming
``provider.order``) and removes them from the canonical request, because they
are instructions to the router, not to the vendor: a vendor would reject or
misread them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlock.core.errors import InvalidRequest
from interlock.core.regions import BadRegionName, parse_names

#: Body fields consumed by interlock's router and never forwarded.
ROUTING_FIELDS = ("provider", "models", "route")
SORTS = {"price": "cost", "throughput": "throughput", "latency": "latency"}
SUFFIXES = {":floor": "cost", ":nitro": "throughput"}
MAX_FALLBACK_MODELS = 10
_PRICE_KEYS = ("prompt", "completion", "request", "image", "audio")
#: OpenRouter provider fields interlock accepts but has no data to act on (reported as ignored).
_IGNORED = ("quantizations", "enforce_distillable_text", "preferred_min_throughput", "preferred_max_latency",
            "experimental")


@dataclass(frozen=True, slots=True)
class ProviderPrefs:
    order: tuple[str, ...] = ()
    only: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    allow_fallbacks: bool = True
    #: Strategy name (``cost``, ``throughput``, ``latency``) from ``sort``.
    sort: str | None = None
    require_parameters: bool = False
    zdr: bool = False
    data_collection_deny: bool = False
    #: USD per 1M tokens (prompt, completion), USD per request.
    max_prompt: float | None = None
    max_completion: float | None = None
    max_request: float | None = None
    #: ``provider.regions``: region or jurisdiction names the request narrows routing to.
    regions: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.order:
            out["order"] = list(self.order)
        if self.only:
            out["only"] = sorted(self.only)
        if self.ignore:
            out["ignore"] = sorted(self.ignore)
        if not self.allow_fallbacks:
            out["allow_fallbacks"] = False
        if self.sort:
            out["sort"] = self.sort
        if self.require_parameters:
            out["require_parameters"] = True
        if self.zdr:
            out["zdr"] = True
        if self.data_collection_deny:
            out["data_collection"] = "deny"
        price = {k: v for k, v in (("prompt", self.max_prompt), ("completion", self.max_completion),
                                   ("request", self.max_request)) if v is not None}
        if price:
            out["max_price"] = price
        if self.regions:
            out["regions"] = list(self.regions)
        if self.ignored:
            out["ignored"] = list(self.ignored)
        return out


NO_PREFS = ProviderPrefs()


@dataclass(slots=True)  # one per request: not frozen (cheaper to build); never mutated
class Overrides:
    #: Model names to try, in order: the request's ``model`` (suffix removed), then ``models``.
    names: tuple[str, ...]
    #: Strategy forced by a ``:floor`` / ``:nitro`` suffix, per name (None = none).
    suffix_sorts: tuple[str | None, ...]
    provider: ProviderPrefs = NO_PREFS


def _invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{param}': {message}", param=param, code="invalid_type")


def _slugs(value: Any, param: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _invalid(param, "expected an array of provider slugs.")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _invalid(f"{param}[{i}]", "expected a non-empty string.")
        out.append(item.strip().lower())
    return tuple(out)


def region_list(value: Any, param: str) -> tuple[str, ...]:
    """Region or jurisdiction names: a list, or (a header's form) one comma-separated string."""
    try:
        return parse_names(value, comma=True)
    except BadRegionName as exc:
        where = f"{param}[{exc.index}]" if exc.index is not None and isinstance(value, list) else param
        raise _invalid(where, exc.message + ".") from None


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(param, "expected a boolean.")
    return value


def _price(value: Any, param: str) -> float:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _invalid(param, "expected a number (USD).") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise _invalid(param, "expected a number (USD).")
    if not number >= 0:
        raise _invalid(param, "expected a number >= 0.")
    return number


def parse_provider(value: Any) -> ProviderPrefs:
    if value is None:
        return NO_PREFS
    if not isinstance(value, dict):
        raise _invalid("provider", "expected an object.")
    kwargs: dict[str, Any] = {}
    ignored: list[str] = []
    for key, raw in value.items():
        param = f"provider.{key}"
        if raw is None:
            continue
        if key == "order":
            kwargs["order"] = _slugs(raw, param)
        elif key in ("only", "ignore"):
            kwargs[key] = frozenset(_slugs(raw, param))
        elif key in ("allow_fallbacks", "require_parameters", "zdr"):
            kwargs[key] = _bool(raw, param)
        elif key == "sort":
            by = raw.get("by") if isinstance(raw, dict) else raw
            if not isinstance(by, str) or by not in SORTS:
                raise _invalid(param, "expected one of 'price', 'throughput', 'latency'.")
            kwargs["sort"] = SORTS[by]
        elif key == "data_collection":
            if raw not in ("allow", "deny"):
                raise _invalid(param, "expected 'allow' or 'deny'.")
            kwargs["data_collection_deny"] = raw == "deny"
        elif key == "max_price":
            if not isinstance(raw, dict):
                raise _invalid(param, "expected an object with prompt / completion / request prices.")
            for pkey, pval in raw.items():
                if pkey not in _PRICE_KEYS:
                    raise _invalid(f"{param}.{pkey}", f"unknown price (known: {', '.join(_PRICE_KEYS)}).")
                number = _price(pval, f"{param}.{pkey}")
                if pkey in ("prompt", "completion", "request"):
                    kwargs[f"max_{pkey}"] = number
                else:
                    ignored.append(f"{param}.{pkey}")
        elif key == "regions":
            kwargs["regions"] = region_list(raw, param)
        elif key in _IGNORED:
            ignored.append(param)
        else:
            raise _invalid(param, "unknown provider preference (known: order, only, ignore, allow_fallbacks, sort, "
                                  "require_parameters, zdr, data_collection, max_price, regions).")
    return ProviderPrefs(**kwargs, ignored=tuple(ignored))


def split_suffix(name: str) -> tuple[str, str | None]:
    for suffix, strategy in SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], strategy
    return name, None


_PLAIN: dict[str, Overrides] = {}
_PLAIN_LIMIT = 4096


def parse_overrides(request: Mapping[str, Any]) -> Overrides:
    """Read and validate the routing fields of a (already type-checked) chat request."""
    model = request["model"]
    if type(model) is str and "provider" not in request and "models" not in request and "route" not in request:
        # The common case depends on the model name alone: shared, never mutated.
        cached = _PLAIN.get(model)
        if cached is None:
            if len(_PLAIN) >= _PLAIN_LIMIT:
                _PLAIN.clear()
            primary, sort = split_suffix(model)
            cached = _PLAIN[model] = Overrides((primary,), (sort,), NO_PREFS)
        return cached
    provider = parse_provider(request.get("provider"))
    primary, sort = split_suffix(str(request["model"]))
    names = [primary]
    sorts: list[str | None] = [sort]
    models = request.get("models")
    if models is not None:
        if not isinstance(models, list):
            raise _invalid("models", "expected an array of model names.")
        if len(models) > MAX_FALLBACK_MODELS:
            raise _invalid("models", f"at most {MAX_FALLBACK_MODELS} fallback models are allowed.")
        for i, item in enumerate(models):
            if not isinstance(item, str) or not item.strip():
                raise _invalid(f"models[{i}]", "expected a non-empty string.")
            name, item_sort = split_suffix(item.strip())
            if name not in names:
                names.append(name)
                sorts.append(item_sort)
    route = request.get("route")
    if route is not None and route != "fallback":
        raise _invalid("route", "expected 'fallback'.")
    return Overrides(tuple(names), tuple(sorts), provider)


def strip_routing_fields(request: dict[str, Any]) -> dict[str, Any]:
    """The request without interlock's routing fields (a copy only when there is something to strip)."""
    if not any(key in request for key in ROUTING_FIELDS):
        return request
    return {k: v for k, v in request.items() if k not in ROUTING_FIELDS}
