"""Views of the catalog for the HTTP API and the CLI (pure functions, no I/O).

The list endpoint speaks OpenAI's ``/v1/models`` shape so every OpenAI SDK can
parse it, enriched with OpenRouter-style fields (pricing per token as exact
decimal strings, architecture, supported parameters) that routers and UIs
already know how to read. Prices shown for a model are its reference route's;
per-vendor prices are in the endpoints view.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from interlock.catalog.catalog import CAPABILITIES, Catalog
from interlock.core.errors import InvalidRequest, ModelNotFound
from interlock.core.model import Model, Route
from interlock.core.pricing import MICRO, Price, micro_to_usd_str

Stats = Mapping[tuple[str, str], Mapping[str, float]]

#: Stats keys the endpoints view knows (anything else is passed through under "stats").
STAT_KEYS = ("latency_ms", "throughput_tps", "uptime")

_PER_TOKEN = MICRO * MICRO  # micro-USD per 1M tokens -> USD per token


def created_unix(release_date: str | None) -> int:
    """Unix time (UTC midnight) of a ``YYYY-MM-DD`` / ``YYYY-MM`` / ``YYYY`` date; 0 if unknown."""
    if not release_date:
        return 0
    parts = release_date.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 1
        day = int(parts[2]) if len(parts) > 2 else 1
        return int(datetime(year, month, day, tzinfo=UTC).timestamp())
    except (ValueError, IndexError):
        return 0


def modality_string(inputs: Sequence[str], outputs: Sequence[str]) -> str:
    """OpenRouter's modality summary, e.g. ``"text+image->text"``."""
    return f"{'+'.join(inputs) or 'text'}->{'+'.join(outputs) or 'text'}"


def pricing_per_token(price: Price) -> dict[str, str]:
    """USD per token as exact decimal strings (OpenRouter's ``pricing`` object)."""
    fields = {
        "prompt": price.input,
        "completion": price.output,
        "input_cache_read": price.cache_read,
        "input_cache_write": price.cache_write,
        "internal_reasoning": price.reasoning,
        "audio": price.input_audio,
    }
    out = {key: micro_to_usd_str(value, _PER_TOKEN) for key, value in fields.items() if value is not None}
    if price.request is not None:  # request is per 1,000 requests
        out["request"] = micro_to_usd_str(price.request, MICRO * 1000)
    return out


def supported_parameters(capabilities: Collection[str], lab: str) -> list[str]:
    """OpenAI request parameters a model accepts, derived from its capabilities."""
    params = {"max_tokens", "max_completion_tokens", "stop"}
    if "streaming" in capabilities:
        params.update({"stream", "stream_options"})
    if "temperature" in capabilities:
        params.update({"temperature", "top_p"})
    if "tools" in capabilities:
        params.update({"tools", "tool_choice", "parallel_tool_calls"})
    if "structured_outputs" in capabilities:
        params.update({"response_format", "structured_outputs"})
    if "reasoning" in capabilities:
        params.update({"reasoning", "reasoning_effort", "include_reasoning"})
    if lab != "anthropic":  # Anthropic's API has no seed or repetition penalties
        params.update({"seed", "frequency_penalty", "presence_penalty"})
    return sorted(params)


def _stats_for(stats: Stats | None, model: Model, route: Route) -> Mapping[str, float] | None:
    if stats is None:
        return None
    return stats.get((route.vendor, route.vendor_model_id)) or stats.get((route.vendor, model.id))


def openai_model_entry(
    model: Model, live_vendors: Collection[str], stats: Stats | None = None
) -> dict[str, Any]:
    """One ``/v1/models`` entry: OpenAI's four fields plus OpenRouter-style metadata."""
    ref = model.reference_route
    live = [v for v in model.vendors if v in live_vendors]
    entry: dict[str, Any] = {
        "id": model.id,
        "object": "model",
        "created": created_unix(model.release_date),
        "owned_by": model.lab,
        "name": model.name,
        "family": model.family,
        "knowledge_cutoff": model.knowledge,
        "context_length": model.context_window,
        "architecture": {
            "input_modalities": list(model.input_modalities),
            "output_modalities": list(model.output_modalities),
            "modality": modality_string(model.input_modalities, model.output_modalities),
        },
        "pricing": pricing_per_token(ref.price) if ref is not None else {},
        "reference_vendor": ref.vendor if ref is not None else None,
        "supported_parameters": supported_parameters(model.capabilities, model.lab),
        "capabilities": sorted(model.capabilities),
        "open_weights": model.open_weights,
        "top_provider": {
            "context_length": (ref.context_window if ref is not None else None) or model.context_window,
            "max_completion_tokens": (ref.max_output if ref is not None else None) or model.max_output,
            "is_moderated": False,
        },
        "vendors": list(model.vendors),
        "live_vendors": live,
        "endpoints_live": sum(1 for r in model.routes if r.vendor in live_vendors),
    }
    if stats is not None:
        entry["endpoint_stats"] = {
            f"{r.vendor}:{r.vendor_model_id}": _stats_for(stats, model, r) for r in model.routes
        }
    return entry


def _values(query: Mapping[str, Any], key: str) -> list[str]:
    raw = query.get(key)
    if raw is None:
        return []
    items: Iterable[Any] = raw if isinstance(raw, list | tuple) else [raw]
    return [v.strip() for item in items for v in str(item).split(",") if v.strip()]


def filter_models(
    catalog: Catalog,
    live_vendors: Collection[str],
    *,
    vendors: Sequence[str] = (),
    capabilities: Sequence[str] = (),
    input_modalities: Sequence[str] = (),
    output_modalities: Sequence[str] = (),
    search: str | None = None,
    live_only: bool = False,
) -> list[Model]:
    """Models matching every filter (each list is AND-ed); raises InvalidRequest on unknown values."""
    for v in vendors:
        if v not in catalog.vendors:
            raise InvalidRequest(
                f"unknown vendor {v!r}; known: {', '.join(sorted(catalog.vendors))}", param="vendor"
            )
    for c in capabilities:
        if c not in CAPABILITIES:
            raise InvalidRequest(
                f"unknown capability {c!r}; known: {', '.join(sorted(CAPABILITIES))}", param="capability"
            )
    known_in = {m for model in catalog.models for m in model.input_modalities}
    known_out = {m for model in catalog.models for m in model.output_modalities}
    for value, known, param in [(m, known_in, "input_modality") for m in input_modalities] + [
        (m, known_out, "output_modality") for m in output_modalities
    ]:
        if value not in known:
            raise InvalidRequest(f"unknown {param} {value!r}; known: {', '.join(sorted(known))}", param=param)
    needle = search.lower() if search else None
    out = []
    for model in catalog.models:
        if vendors and not any(v in model.vendors for v in vendors):
            continue
        if not all(c in model.capabilities for c in capabilities):
            continue
        if not all(m in model.input_modalities for m in input_modalities):
            continue
        if not all(m in model.output_modalities for m in output_modalities):
            continue
        if needle and needle not in model.id.lower() and needle not in model.name.lower():
            continue
        if live_only and not any(v in live_vendors for v in model.vendors):
            continue
        out.append(model)
    return out


def model_list(
    catalog: Catalog, live_vendors: Collection[str], query: Mapping[str, Any], stats: Stats | None = None
) -> dict[str, Any]:
    """``GET /v1/models``: filters ``vendor``, ``capability`` (repeatable or comma list),
    ``input_modality``, ``output_modality``, ``search`` and ``live=true``. Other query
    parameters are ignored, as OpenAI does."""
    live = query.get("live")
    live_text = str(live[-1] if isinstance(live, list | tuple) and live else live or "").lower()
    if live_text not in ("", "true", "false", "1", "0"):
        raise InvalidRequest(f"live must be true or false, got {live_text!r}", param="live")
    search = _values(query, "search")
    models = filter_models(
        catalog,
        live_vendors,
        vendors=_values(query, "vendor"),
        capabilities=_values(query, "capability"),
        input_modalities=_values(query, "input_modality"),
        output_modalities=_values(query, "output_modality"),
        search=" ".join(search) if search else None,
        live_only=live_text in ("true", "1"),
    )
    return {"object": "list", "data": [openai_model_entry(m, live_vendors, stats) for m in models]}


def _require(catalog: Catalog, model_id: str) -> Model:
    model = catalog.get(model_id)
    if model is None:
        raise ModelNotFound(f"The model '{model_id}' does not exist in the catalog", param="model")
    return model


def _vendor_name(catalog: Catalog, vendor: str) -> str:
    meta = catalog.meta.get("vendors", {})
    info = meta.get(vendor) if isinstance(meta, Mapping) else None
    return str(info.get("name", vendor)) if isinstance(info, Mapping) else vendor


def endpoint_entry(
    catalog: Catalog, model: Model, route: Route, live_vendors: Collection[str], stats: Stats | None = None
) -> dict[str, Any]:
    """One vendor route, shaped like an OpenRouter endpoint."""
    figures = _stats_for(stats, model, route)
    entry: dict[str, Any] = {
        "name": f"{_vendor_name(catalog, route.vendor)} | {route.vendor_model_id}",
        "vendor": route.vendor,
        "provider_name": _vendor_name(catalog, route.vendor),
        "vendor_model_id": route.vendor_model_id,
        "context_length": route.context_window,
        "max_completion_tokens": route.max_output,
        "max_prompt_tokens": route.max_input,
        "pricing": pricing_per_token(route.price),
        "pricing_tiers": [
            {"above_prompt_tokens": t.above, **pricing_per_token(route.price.for_prompt(t.above + 1))}
            for t in route.price.tiers
        ],
        "supported_parameters": supported_parameters(route.capabilities, model.lab),
        "capabilities": sorted(route.capabilities),
        "live": route.vendor in live_vendors,
        "status": route.status,
        "zdr": route.zdr,
        "reference": route is model.reference_route,
    }
    for key in STAT_KEYS:
        entry[key] = figures.get(key) if figures else None
    if figures:
        extra = {k: v for k, v in figures.items() if k not in STAT_KEYS}
        if extra:
            entry["stats"] = dict(extra)
    return entry


def model_detail(
    catalog: Catalog, model_id: str, live_vendors: Collection[str], stats: Stats | None = None
) -> dict[str, Any]:
    """``GET /v1/models/{id}``: the list entry plus facts, benchmarks and every endpoint."""
    model = _require(catalog, model_id)
    entry = openai_model_entry(model, live_vendors, stats)
    entry.pop("endpoint_stats", None)
    entry.update(
        {
            "release_date": model.release_date,
            "max_input_tokens": model.max_input,
            "benchmarks": dict(model.benchmarks),
            "endpoints": [endpoint_entry(catalog, model, r, live_vendors, stats) for r in model.routes],
        }
    )
    return entry


def model_endpoints(
    catalog: Catalog, model_id: str, live_vendors: Collection[str], stats: Stats | None = None
) -> dict[str, Any]:
    """OpenRouter's ``/api/v1/models/{author}/{slug}/endpoints`` shape."""
    model = _require(catalog, model_id)
    return {
        "data": {
            "id": model.id,
            "name": model.name,
            "created": created_unix(model.release_date),
            "architecture": {
                "input_modalities": list(model.input_modalities),
                "output_modalities": list(model.output_modalities),
                "modality": modality_string(model.input_modalities, model.output_modalities),
            },
            "endpoints": [endpoint_entry(catalog, model, r, live_vendors, stats) for r in model.routes],
        }
    }


# --------------------------------------------------------------------------- CLI text

_CAP_SHORT = {
    "tools": "tools",
    "vision": "vision",
    "reasoning": "reason",
    "structured_outputs": "json",
    "prompt_caching": "cache",
    "audio_input": "audio",
    "pdf_input": "pdf",
}


def usd_per_million(micro: int | None) -> str:
    """``400_000`` -> ``"0.40"``: at least two decimals, never rounded."""
    if micro is None:
        return "-"
    value = Decimal(micro) / MICRO
    text = micro_to_usd_str(micro)
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else text


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _fmt_int(value: int | None) -> str:
    return f"{value:,}" if value else "-"


def _vendor_cell(model: Model, live_vendors: Collection[str]) -> str:
    return ",".join(f"{v}*" if v in live_vendors else v for v in model.vendors)


def models_table(
    catalog: Catalog,
    live_vendors: Collection[str],
    vendor: str | None = None,
    capability: str | None = None,
    search: str | None = None,
) -> str:
    """``interlock models``: one aligned row per model (reference-route prices)."""
    models = filter_models(
        catalog,
        live_vendors,
        vendors=[vendor] if vendor else [],
        capabilities=[c for c in (capability or "").split(",") if c],
        search=search,
    )
    rows = []
    for m in models:
        ref = m.reference_route
        caps = ",".join(short for cap, short in _CAP_SHORT.items() if cap in m.capabilities)
        rows.append(
            [
                m.id,
                _fmt_int(m.context_window),
                usd_per_million(ref.price.input if ref else None),
                usd_per_million(ref.price.output if ref else None),
                caps or "-",
                _vendor_cell(m, live_vendors),
            ]
        )
    table = _table(
        ["MODEL", "CONTEXT", "IN $/1M", "OUT $/1M", "CAPABILITIES", "VENDORS"], rows, right={1, 2, 3}
    )
    return f"{table}\n\n{len(rows)} models; * = vendor configured and live; prices are the reference route's."


def model_page(catalog: Catalog, model_id: str, live_vendors: Collection[str]) -> str:
    """``interlock models show ID``: facts, per-vendor prices, capabilities, benchmarks."""
    m = _require(catalog, model_id)
    facts = [
        ("Name", m.name),
        ("Lab", m.lab),
        ("Family", m.family or "-"),
        ("Released", m.release_date or "-"),
        ("Knowledge", m.knowledge or "-"),
        ("Context", _fmt_int(m.context_window)),
        ("Max output", _fmt_int(m.max_output)),
        ("Modalities", modality_string(m.input_modalities, m.output_modalities)),
        ("Open weights", "yes" if m.open_weights else "no"),
        ("Capabilities", ", ".join(sorted(m.capabilities)) or "-"),
        (
            "Reference",
            f"{m.reference_route.vendor} ({m.reference_route.vendor_model_id})" if m.reference_route else "-",
        ),
    ]
    width = max(len(k) for k, _ in facts)
    out = [
        m.id,
        "=" * len(m.id),
        *(f"{k.ljust(width)}  {v}" for k, v in facts),
        "",
        "Prices (USD per 1M tokens)",
    ]
    rows = []
    for r in m.routes:
        p = r.price
        notes = []
        if r.vendor in live_vendors:
            notes.append("live")
        if r is m.reference_route:
            notes.append("reference")
        if r.status:
            notes.append(r.status)
        for tier in p.tiers:
            t = p.for_prompt(tier.above + 1)
            notes.append(f">{tier.above:,} tok: {usd_per_million(t.input)}/{usd_per_million(t.output)}")
        rows.append(
            [
                r.vendor,
                r.vendor_model_id,
                usd_per_million(p.input),
                usd_per_million(p.output),
                usd_per_million(p.cache_read),
                usd_per_million(p.cache_write),
                _fmt_int(r.context_window),
                ", ".join(notes),
            ]
        )
    out.append(
        _table(
            ["VENDOR", "VENDOR MODEL ID", "INPUT", "OUTPUT", "CACHE RD", "CACHE WR", "CONTEXT", "NOTES"],
            rows,
            right={2, 3, 4, 5, 6},
        )
    )
    if m.benchmarks:
        out += ["", "Benchmarks"]
        bw = max(len(k) for k in m.benchmarks)
        out += [f"{k.ljust(bw)}  {v:g}" for k, v in sorted(m.benchmarks.items())]
    return "\n".join(out)
