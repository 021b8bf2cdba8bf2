"""Compile a models.dev snapshot into interlock's packaged catalog (a build tool, not shipped in the package).

    python tools/catalog_compile.py [SNAPSHOT_DIR] [--out PATH]

The snapshot is input, not product: this module is the only code that reads it,
and only at build time (``make catalog``). The output is deterministic (sorted
keys, models and routes), so recompiling an unchanged snapshot is a no-op diff.

Identity rules (how provider files become canonical models and routes):

1. A provider model with ``base_model = "lab/model"`` is a route of the canonical
   model ``lab/model``: the lab file's facts, minus ``base_model_omit``, overlaid
   with the provider file (provider fields win).
2. A provider model without ``base_model`` is normalised first, the way its
   vendor's folder declares (``interlock.vendors.registry.catalog_ids``): Bedrock region
   prefixes and ``-v1:0`` suffixes, Vertex's ``-maas``, Fireworks' account path
   and OpenRouter's ``:free`` / ``~`` markers are stripped, and organisation
   names are mapped to models.dev lab folders (``mistralai`` -> ``mistral``,
   ``meta-llama`` -> ``meta``, ``qwen`` -> ``alibaba``, ``x-ai`` -> ``xai``...).
   It is then linked to an existing canonical model when one matches:
   ``<lab>/<model>`` for ``org/model`` ids, ``<lab>/<id>`` for a lab's own API,
   else a unique canonical id with the same last segment (Azure's
   ``gpt-4.1-mini`` -> ``openai/gpt-4.1-mini``).
3. Otherwise it becomes its own model with id ``<lab>/<model>`` (org ids) or
   ``<vendor's lab or vendor>/<id>`` (``azure/phi-4``, ``groq/llama-3.3-70b-versatile``,
   ``fireworks/glm-5p1``), facts from that provider file. Later providers link to
   models created this way, so OpenRouter's and Azure's ``gpt-5-chat`` are one model.

Providers are processed lab APIs and ``base_model`` files first, then ``org/model``
ids, then the rest, so the most authoritative source creates a model and
supplies its facts. Two providers feeding one vendor (Vertex's two Claude
catalogs) give the same vendor id once.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from interlock.catalog.catalog import CAPABILITIES, LAB_VENDOR, Catalog, make_model
from interlock.core.model import Model, Route
from interlock.core.pricing import PRICE_FIELDS, Price, PriceTier, usd_to_micro
from interlock.vendors.registry import catalog_ids

#: interlock vendor id -> the models.dev providers it is compiled from. When two
#: providers give the same vendor model id, the earlier provider wins.
VENDOR_SOURCES: Mapping[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "azure": ("azure",),
    "anthropic": ("anthropic",),
    "google": ("google",),
    "vertex": ("google-vertex-anthropic", "google-vertex"),
    "bedrock": ("amazon-bedrock",),
    "mistral": ("mistral",),
    "groq": ("groq",),
    "deepseek": ("deepseek",),
    "xai": ("xai",),
    "together": ("togetherai",),
    "fireworks": ("fireworks-ai",),
    "cerebras": ("cerebras",),
    "openrouter": ("openrouter",),
    "perplexity": ("perplexity",),
    "cohere": ("cohere",),
}

#: Reverse of LAB_VENDOR: the lab a vendor is the first-party API of.
VENDOR_LAB: Mapping[str, str] = {vendor: lab for lab, vendor in LAB_VENDOR.items()}

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SNAPSHOT = REPO_ROOT.parent / "shared" / "catalog" / "models.dev"
DEFAULT_OUT = REPO_ROOT / "src" / "interlock" / "catalog" / "data" / "catalog.json"

_NOT_STREAMING_FAMILIES = ("embed", "whisper")

#: Organisation names vendors use -> the models.dev lab folder they mean.
ORG_ALIASES: Mapping[str, str] = {
    "mistralai": "mistral",
    "x-ai": "xai",
    "meta-llama": "meta",
    "meta": "meta",
    "qwen": "alibaba",
    "deepseek-ai": "deepseek",
    "moonshot": "moonshotai",
    "zai": "zhipuai",
    "zai-org": "zhipuai",
    "z-ai": "zhipuai",
    "minimaxai": "minimax",
    "cohere": "cohere",
    "nvidia": "nvidia",
}

def _split_id(vendor: str, pid: str) -> tuple[str | None, list[str]]:
    """A provider id -> (organisation or None, model-name variants, most literal first).

    OpenRouter's ``:free`` tier is stripped for every vendor; the rest is the
    vendor's own reading (``interlock.vendors.registry.catalog_ids``: Bedrock's
    region prefix and ``-v1:0`` version suffix, Vertex's ``-maas``, Fireworks'
    ``accounts/fireworks/models/`` path; ``org/model`` ids elsewhere, OpenRouter's
    ``~`` alias marker dropped). The last variant is the most normalised one.
    """
    raw = pid.lower()
    if raw.endswith(":free"):
        raw = raw[: -len(":free")]
    return catalog_ids(vendor).split(raw)


class CompileError(ValueError):
    """The snapshot holds something the compiler cannot represent faithfully."""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CompileError(f"{path}: {exc}") from exc


def _drop_path(data: dict[str, Any], dotted: str) -> None:
    """Remove ``a.b.c`` from nested dicts (``base_model_omit`` semantics)."""
    head, _, rest = dotted.partition(".")
    if head not in data:
        return
    if not rest:
        del data[head]
    elif isinstance(data[head], dict):
        inner = dict(data[head])
        _drop_path(inner, rest)
        data[head] = inner


def _overlay(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge tables; anything else (scalars, arrays) in ``top`` replaces ``base``."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _overlay(out[key], value)
        else:
            out[key] = value
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _int_or_none(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise CompileError(f"{where}: expected an integer, got {value!r}")
    if value != int(value):
        raise CompileError(f"{where}: expected an integer, got {value!r}")
    return int(value) or None  # models.dev writes 0 for "unknown"


def compile_price(cost: Mapping[str, Any] | None, where: str) -> Price:
    """models.dev ``[cost]`` (USD per 1M) -> Price (micro-USD per 1M), tiers and modes included."""
    if not cost:
        return Price()
    values: dict[str, Any] = {}
    for name in PRICE_FIELDS:
        if cost.get(name) is not None:
            values[name] = usd_to_micro(cost[name], what=f"{where}: cost.{name}")
    # Together writes "cached_input" for what everyone else calls cache_read.
    if "cache_read" not in values and cost.get("cached_input") is not None:
        values["cache_read"] = usd_to_micro(cost["cached_input"], what=f"{where}: cost.cached_input")
    request = usd_to_micro(cost["request"], what=f"{where}: cost.request") if "request" in cost else None
    tiers: list[PriceTier] = []
    for i, tier in enumerate(cost.get("tiers", ())):
        spec = tier.get("tier", {})
        kind = spec.get("type", "context")
        if kind != "context" or "size" not in spec:
            raise CompileError(f"{where}: cost.tiers[{i}]: unsupported tier {spec!r}")
        rates = {
            name: usd_to_micro(tier[name], what=f"{where}: cost.tiers[{i}].{name}")
            for name in PRICE_FIELDS
            if name in tier and name != "citation"
        }
        tiers.append(PriceTier(above=int(spec["size"]), **rates))
    legacy = cost.get("context_over_200k")
    if isinstance(legacy, Mapping) and not any(t.above == 200_000 for t in tiers):
        rates = {
            name: usd_to_micro(legacy[name], what=f"{where}: cost.context_over_200k.{name}")
            for name in PRICE_FIELDS
            if name in legacy and name != "citation"
        }
        tiers.append(PriceTier(above=200_000, **rates))
    return replace(Price(), **values, request=request, tiers=tuple(sorted(tiers, key=lambda t: t.above)))


def _modes(data: Mapping[str, Any], where: str) -> tuple[tuple[str, Price], ...]:
    modes = data.get("experimental", {}).get("modes", {})
    out = []
    for name, spec in sorted(modes.items()):
        if isinstance(spec, Mapping) and isinstance(spec.get("cost"), Mapping):
            out.append((name, compile_price(spec["cost"], f"{where}: experimental.modes.{name}")))
    return tuple(out)


def capabilities_of(data: Mapping[str, Any], model_id: str, price: Price | None) -> frozenset[str]:
    """Derive interlock capability names from models.dev facts."""
    mods = data.get("modalities", {})
    inputs = set(mods.get("input", ("text",)))
    outputs = set(mods.get("output", ("text",)))
    family = str(data.get("family", "")).lower()
    caps: set[str] = set()
    chat = "text" in outputs and not any(
        k in family or k in model_id.lower() for k in _NOT_STREAMING_FAMILIES
    )
    if chat:
        caps.add("streaming")
    flags = {
        "tool_call": "tools",
        "structured_output": "structured_outputs",
        "reasoning": "reasoning",
        "temperature": "temperature",
        "attachment": "attachments",
    }
    caps.update(cap for key, cap in flags.items() if data.get(key) is True)
    if "image" in inputs:
        caps.add("vision")
    if "audio" in inputs:
        caps.add("audio_input")
    if "pdf" in inputs:
        caps.add("pdf_input")
    if price is not None and price.cache_read is not None:
        caps.add("prompt_caching")
    assert caps <= CAPABILITIES, caps - CAPABILITIES
    return frozenset(caps)


def _facts(data: Mapping[str, Any], model_id: str, lab: str, where: str) -> dict[str, Any]:
    limit = data.get("limit", {})
    mods = data.get("modalities", {})
    bench: dict[str, tuple[str, float]] = {}
    for b in data.get("benchmarks", ()):
        name, score = b.get("name"), b.get("score")
        if name is None or score is None:
            continue
        when = _text(b.get("date")) or ""
        if name not in bench or when > bench[name][0]:  # latest result per benchmark
            bench[name] = (when, float(score))
    return {
        "id": model_id,
        "lab": lab,
        "name": str(data.get("name") or model_id),
        "family": _text(data.get("family")),
        "release_date": _text(data.get("release_date")),
        "knowledge": _text(data.get("knowledge")),
        "context_window": _int_or_none(limit.get("context"), f"{where}: limit.context"),
        "max_output": _int_or_none(limit.get("output"), f"{where}: limit.output"),
        "max_input": _int_or_none(limit.get("input"), f"{where}: limit.input"),
        "input_modalities": tuple(mods.get("input", ("text",))),
        "output_modalities": tuple(mods.get("output", ("text",))),
        "capabilities": capabilities_of(data, model_id, None),
        "open_weights": bool(data.get("open_weights", False)),
        "benchmarks": {k: v for k, (_, v) in sorted(bench.items())},
    }


class _Builder:
    def __init__(self, snapshot: Path) -> None:
        self.snapshot = snapshot
        self.lab_files: dict[str, dict[str, Any]] = {}
        for path in sorted((snapshot / "models").glob("*/*.toml")):
            self.lab_files[f"{path.parent.name}/{path.stem}"] = _read_toml(path)
        if not self.lab_files:
            raise CompileError(
                f"{snapshot}: no models/<lab>/<model>.toml files; is this a models.dev snapshot?"
            )
        self.facts: dict[str, dict[str, Any]] = {}  # canonical id -> facts
        self.routes: dict[str, list[Route]] = {}
        self.seen: set[tuple[str, str]] = set()
        self.latest_update = ""

    def _known(self) -> dict[str, str]:
        return {k.lower(): k for k in (*self.lab_files, *self.facts)}

    def _resolve(self, vendor: str, pid: str) -> tuple[str, bool]:
        """(canonical id, whether it already exists) for a provider model without base_model."""
        known = self._known()
        org, variants = _split_id(vendor, pid)
        candidates: list[str] = []
        if org is not None:
            lab = ORG_ALIASES.get(org, org)
            for v in variants:
                candidates.append(f"{lab}/{v}")
                if not v.startswith((org, lab)):
                    candidates.append(f"{lab}/{org}-{v}")
            own = f"{lab}/{variants[-1]}"
        else:
            own_lab = VENDOR_LAB.get(vendor)
            for v in variants:
                if own_lab is not None:
                    candidates.append(f"{own_lab}/{v}")
                for prefix in sorted(ORG_ALIASES, key=len, reverse=True):
                    if v.startswith(prefix + "-"):
                        candidates.append(f"{ORG_ALIASES[prefix]}/{v[len(prefix) + 1 :]}")
            own = f"{own_lab or vendor}/{variants[-1]}"
        for cand in candidates:
            if cand in known:
                return known[cand], True
        if org is None:
            for v in variants:
                hits = [k for k in known.values() if k.rsplit("/", 1)[-1].lower() == v]
                if len(hits) == 1:
                    return hits[0], True
        return own, own in known

    def _ensure(self, canonical: str, data: Mapping[str, Any], where: str) -> None:
        if canonical in self.facts:
            return
        lab_data = self.lab_files.get(canonical)
        self.facts[canonical] = _facts(
            lab_data if lab_data is not None else data, canonical, canonical.split("/", 1)[0], where
        )

    def add(self, vendor: str, provider: str, pid: str, data: dict[str, Any], where: str) -> None:
        self.latest_update = max(self.latest_update, _text(data.get("last_updated")) or "")
        base_id = data.get("base_model")
        if base_id is not None:
            base = self.lab_files.get(str(base_id))
            if base is None:
                raise CompileError(f"{where}: base_model {base_id!r} has no models/{base_id}.toml")
            inherited = dict(base)
            for dotted in data.get("base_model_omit", ()):
                _drop_path(inherited, str(dotted))
            merged = _overlay(inherited, data)
            canonical = str(base_id)
        else:
            canonical, _ = self._resolve(vendor, pid)
            lab_data = self.lab_files.get(canonical)
            merged = _overlay(lab_data, data) if lab_data is not None else data
        self._ensure(canonical, merged, where)
        if (vendor, pid) in self.seen:
            return  # the same vendor id from a second source (Vertex's two Claude catalogs)
        self.seen.add((vendor, pid))
        price = compile_price(merged.get("cost"), where)
        modes = _modes(merged, where)
        if modes:
            price = replace(price, modes=modes)
        limit = merged.get("limit", {})
        status = merged.get("status")
        self.routes.setdefault(canonical, []).append(
            Route(
                vendor=vendor,
                vendor_model_id=pid,
                price=price,
                context_window=_int_or_none(limit.get("context"), f"{where}: limit.context"),
                max_output=_int_or_none(limit.get("output"), f"{where}: limit.output"),
                max_input=_int_or_none(limit.get("input"), f"{where}: limit.input"),
                capabilities=capabilities_of(merged, canonical, price),
                zdr=None,
                status=str(status) if status is not None else None,
                source=provider,
            )
        )

    def models(self) -> list[Model]:
        out = []
        for canonical, facts in sorted(self.facts.items()):
            routes = tuple(self.routes.get(canonical, ()))
            if not routes:
                continue
            caps = set(facts["capabilities"])
            if any("prompt_caching" in r.capabilities for r in routes):
                caps.add("prompt_caching")
            out.append(make_model(**{**facts, "capabilities": frozenset(caps)}, routes=routes))
        return out


def _provider_files(snapshot: Path, provider: str) -> list[tuple[str, Path]]:
    root = snapshot / "providers" / provider / "models"
    if not root.is_dir():
        raise CompileError(f"{root}: missing (provider {provider!r} not in this snapshot)")
    return sorted((p.relative_to(root).with_suffix("").as_posix(), p) for p in root.rglob("*.toml"))


def compile_snapshot(snapshot: Path) -> Catalog:
    """Build a Catalog from a models.dev snapshot directory."""
    builder = _Builder(snapshot)
    entries: list[tuple[int, str, str, str, dict[str, Any], str]] = []
    vendor_meta: dict[str, dict[str, Any]] = {}
    for vendor, providers in VENDOR_SOURCES.items():
        for provider in providers:
            meta = _read_toml(snapshot / "providers" / provider / "provider.toml")
            vm = vendor_meta.setdefault(vendor, {"name": str(meta.get("name", vendor)), "providers": []})
            vm["providers"].append(provider)
            for key in ("doc", "api"):
                if key in meta and key not in vm:
                    vm[key] = str(meta[key])
            for pid, path in _provider_files(snapshot, provider):
                data = _read_toml(path)
                where = str(path.relative_to(snapshot))
                # Phase: 0 = base_model or a lab's own API, 1 = org/model ids, 2 = the rest.
                if "base_model" in data or vendor in VENDOR_LAB:
                    phase = 0
                elif pid.count("/") == 1 and catalog_ids(vendor).org_ids_first:
                    phase = 1
                else:
                    phase = 2
                entries.append((phase, vendor, provider, pid, data, where))
    order = {v: i for i, v in enumerate(VENDOR_SOURCES)}
    entries.sort(key=lambda e: (e[0], order[e[1]], VENDOR_SOURCES[e[1]].index(e[2]), e[3]))
    for _, vendor, provider, pid, data, where in entries:
        builder.add(vendor, provider, pid, data, where)
    meta = {
        "source": {
            "name": "models.dev",
            "license": "MIT",
            "notice": "LICENSE.models.dev",
            "latest_update": builder.latest_update or None,
        },
        "vendors": dict(sorted(vendor_meta.items())),
    }
    return Catalog(builder.models(), meta)


def dump_catalog(catalog: Catalog) -> bytes:
    """Deterministic compact JSON (sorted keys, one model per line for readable diffs)."""
    doc = catalog.to_json()
    models = doc.pop("models")
    head = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    lines = [orjson.dumps(m, option=orjson.OPT_SORT_KEYS) for m in models]
    return head[:-1] + b',"models":[\n' + b",\n".join(lines) + b"\n]}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/catalog_compile.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "snapshot", nargs="?", type=Path, default=DEFAULT_SNAPSHOT, help="models.dev snapshot dir"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output catalog.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        catalog = compile_snapshot(args.snapshot)
    except (CompileError, ValueError) as exc:
        print(f"catalog: {exc}", file=sys.stderr)
        return 1
    payload = dump_catalog(catalog)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(payload)
    license_src = args.snapshot / "LICENSE"
    if license_src.is_file():
        (args.out.parent / "LICENSE.models.dev").write_bytes(license_src.read_bytes())
    routes = sum(len(m.routes) for m in catalog.models)
    elapsed = (time.perf_counter() - started) * 1000
    print(
        f"catalog: {len(catalog.models)} models, {routes} routes, {len(catalog.vendors)} vendors "
        f"-> {args.out} ({len(payload) // 1024} KiB, {elapsed:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
