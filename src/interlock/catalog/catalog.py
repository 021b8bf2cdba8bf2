"""The model catalog: what each model is, and where (and at what price) it can be run.

A :class:`Model` is a canonical ``lab/model`` id with provider-independent facts;
each of its :class:`Route` objects is one vendor serving it under that vendor's
own model id, with that vendor's price, limits and effective capabilities. The
catalog is compiled offline from models.dev (see ``tools/catalog_compile.py``, ``make catalog``)
into ``data/catalog.json``, which ships in the package: :func:`load_catalog`
never touches the network or anything outside the package.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from importlib import resources
from types import MappingProxyType
from typing import Any

import orjson

from interlock.core.model import Model, Route

CAPABILITIES: frozenset[str] = frozenset(
    {
        "streaming",
        "tools",
        "structured_outputs",
        "vision",
        "reasoning",
        "prompt_caching",
        "temperature",
        "attachments",
        "audio_input",
        "pdf_input",
    }
)

#: The lab whose own API a vendor is. A model's reference route is its lab's own
#: vendor when that vendor serves it (OpenAI prices openai/* traffic, etc.).
LAB_VENDOR: Mapping[str, str] = MappingProxyType(
    {
        "openai": "openai",
        "anthropic": "anthropic",
        "google": "google",
        "mistral": "mistral",
        "deepseek": "deepseek",
        "xai": "xai",
        "cohere": "cohere",
        "perplexity": "perplexity",
    }
)

SCHEMA_VERSION = 1



def model_from_json(data: Mapping[str, Any]) -> Model:
    return make_model(
        id=data["id"],
        lab=data["lab"],
        name=data["name"],
        family=data.get("family"),
        release_date=data.get("release_date"),
        knowledge=data.get("knowledge"),
        context_window=data.get("context"),
        max_output=data.get("output"),
        max_input=data.get("input_limit"),
        input_modalities=tuple(data.get("in", ("text",))),
        output_modalities=tuple(data.get("out", ("text",))),
        capabilities=frozenset(data.get("caps", ())),
        open_weights=bool(data.get("open_weights", False)),
        benchmarks=data.get("bench", {}),
        reference_vendor=data.get("reference_vendor"),
        routes=tuple(Route.from_json(r) for r in data.get("routes", ())),
    )




def route_sort_key(route: Route) -> tuple[Any, ...]:
    """Preference order of routes within one vendor: live before deprecated, cheaper first.

    At equal price a Bedrock ``global.`` inference profile wins over the bare
    model id: same rate, more capacity, and newer models accept on-demand calls
    only through a profile.
    """
    blended = route.price.blended()
    return (
        route.deprecated,
        route.vendor_model_id.endswith(":free"),
        blended is None,
        blended or 0,
        not route.vendor_model_id.startswith("global."),
        len(route.vendor_model_id),
        route.vendor_model_id,
    )


def sort_routes(routes: Iterable[Route]) -> tuple[Route, ...]:
    """Routes grouped by vendor (alphabetical), each vendor's in preference order."""
    return tuple(sorted(routes, key=lambda r: (r.vendor, *route_sort_key(r))))


def choose_reference_route(
    lab: str, routes: tuple[Route, ...], pinned_vendor: str | None = None
) -> Route | None:
    """The route whose price stands for the model: the lab's own vendor, else the cheapest.

    "Cheapest" ranks by a 3:1 input:output blend among priced, non-deprecated,
    non-free-tier routes (an OpenRouter ``:free`` variant is rate-limited and
    would make every simulated request cost nothing); if none qualify, any route.
    """
    if not routes:
        return None
    own = pinned_vendor or LAB_VENDOR.get(lab)
    if own is not None:
        for r in routes:  # already in per-vendor preference order
            if r.vendor == own:
                return r
    return min(routes, key=route_sort_key)


def make_model(*, routes: tuple[Route, ...], benchmarks: Mapping[str, float], **facts: Any) -> Model:
    """Build a Model with its routes in canonical order and its reference route chosen."""
    ordered = sort_routes(routes)
    return Model(
        **facts,
        benchmarks=MappingProxyType(dict(benchmarks)),
        routes=ordered,
        reference_route=choose_reference_route(facts["lab"], ordered, facts.get("reference_vendor")),
    )


def with_routes(model: Model, routes: Iterable[Route]) -> Model:
    """A copy of ``model`` with new routes (re-sorted, reference route recomputed)."""
    ordered = sort_routes(routes)
    reference = choose_reference_route(model.lab, ordered, model.reference_vendor)
    return replace(model, routes=ordered, reference_route=reference)


class Catalog:
    """An immutable, indexed set of models. Build new ones with :meth:`with_overrides`."""

    __slots__ = (
        "_by_id",
        "_by_tail",
        "_by_vendor_model",
        "_by_vendor_model_folded",
        "meta",
        "models",
        "vendors",
    )

    def __init__(self, models: Iterable[Model], meta: Mapping[str, Any] | None = None) -> None:
        self.models: tuple[Model, ...] = tuple(sorted(models, key=lambda m: m.id))
        self._by_id: dict[str, Model] = {m.id: m for m in self.models}
        if len(self._by_id) != len(self.models):
            raise ValueError("duplicate model ids in catalog")
        self._by_vendor_model: dict[tuple[str, str], tuple[Model, Route]] = {}
        for m in self.models:
            for r in m.routes:
                self._by_vendor_model.setdefault((r.vendor, r.vendor_model_id), (m, r))
        self._by_vendor_model_folded: dict[tuple[str, str], tuple[Model, Route]] = {}
        for key, value in self._by_vendor_model.items():
            self._by_vendor_model_folded.setdefault((key[0], key[1].lower()), value)
        self.vendors: frozenset[str] = frozenset(v for v, _ in self._by_vendor_model)
        self._by_tail: dict[str, list[Model]] = {}
        for m in self.models:
            self._by_tail.setdefault(m.id.rsplit("/", 1)[-1], []).append(m)
        self.meta: Mapping[str, Any] = MappingProxyType(dict(meta or {}))

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self) -> Iterator[Model]:
        return iter(self.models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def get(self, model_id: str) -> Model | None:
        """The model with canonical id ``model_id`` (exact match), or None."""
        return self._by_id.get(model_id)

    def by_vendor_model(self, vendor: str, vendor_model_id: str) -> tuple[Model, Route] | None:
        """Find a model by a vendor's own id for it (case-insensitive fallback)."""
        hit = self._by_vendor_model.get((vendor, vendor_model_id))
        if hit is None:
            hit = self._by_vendor_model_folded.get((vendor, vendor_model_id.lower()))
        return hit

    def find(self, name: str) -> Model | None:
        """Resolve what a client might send as ``model``, most specific rule first.

        1. a canonical id (``openai/gpt-4.1-mini``), case-insensitively;
        2. ``vendor/vendor_model_id`` (``groq/llama-3.3-70b-versatile``);
        3. a bare id that is the tail of exactly one canonical id (``gpt-4.1-mini``);
        4. a bare vendor model id, preferring the lab's own vendor
           (``claude-sonnet-4-5-20250929`` -> anthropic). Ambiguous names give None.
        """
        hit = self._by_id.get(name) or self._by_id.get(name.lower())
        if hit is not None:
            return hit
        vendor, sep, rest = name.partition("/")
        if sep and vendor in self.vendors:
            pair = self.by_vendor_model(vendor, rest)
            if pair is not None:
                return pair[0]
        tails = self._by_tail.get(name.lower(), [])
        if len(tails) == 1:
            return tails[0]
        matches: dict[str, Model] = {}
        for (v, vid), (m, _) in self._by_vendor_model.items():
            if vid == name:
                if LAB_VENDOR.get(m.lab) == v:
                    return m
                matches[m.id] = m
        if len(matches) == 1:
            return next(iter(matches.values()))
        return None

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Catalog:
        """A new catalog with the config's ``catalog:`` section applied.

        Shape (prices in USD per 1M tokens, as vendors publish them)::

            models:
              <model id>:                      # existing id: patch; new id: add
                name, family, release_date, knowledge: str
                context_window, max_output, max_input: int
                input_modalities, output_modalities, capabilities: [str]
                open_weights: bool
                reference_vendor: str          # pin the reference route
                routes:
                  <vendor>:                    # all of that vendor's routes...
                    vendor_model_id: str       # ...or just this one (added if new)
                    price: {input, output, cache_read, cache_write, reasoning,
                            input_audio, output_audio, citation, request,
                            tiers: [{above: int, input, output, ...}]}
                    context_window, max_output, max_input: int
                    capabilities: [str]
                    zdr: bool
                    remove: true               # drop the vendor's route(s)
            vendors:
              <vendor>: {zdr: bool}            # applies to every route of the vendor

        ``price`` fields merge into the existing price (a negotiated input rate
        keeps the listed output rate); other fields replace. Raises ValueError
        naming the offending key.
        """
        if not overrides:
            return self
        # Imported here: overrides.py imports this module.
        from interlock.catalog.overrides import apply_overrides

        return apply_overrides(self, overrides)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, **dict(self.meta), "models": [m.to_json() for m in self.models]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Catalog:
        if data.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"catalog schema {data.get('schema')!r} is not {SCHEMA_VERSION}; recompile it")
        meta = {k: v for k, v in data.items() if k not in ("schema", "models")}
        return cls((model_from_json(m) for m in data["models"]), meta)


def load_catalog_file(path: str) -> Catalog:
    """Load a compiled catalog from an explicit path (tests, ``--catalog`` options)."""
    with open(path, "rb") as fh:
        return Catalog.from_json(orjson.loads(fh.read()))


@functools.cache
def load_catalog() -> Catalog:
    """The packaged catalog, loaded once per process."""
    raw = resources.files("interlock.catalog").joinpath("data", "catalog.json").read_bytes()
    return Catalog.from_json(orjson.loads(raw))
