"""What the catalog pages show (index, model page, side-by-side comparison), computed from the catalog and live stats (pure functions, no I/O).

The handlers (:mod:`interlock.console.pages`) parse the request and hand these
dictionaries to the templates; the templates only lay them out. Figures are
formatted here, once, the way a buyer reads them: ``$0.40`` per 1M tokens,
``1.05M ctx`` with the exact count beside it.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from markupsafe import escape

from interlock.catalog import Catalog
from interlock.catalog.render import Stats, usd_per_million
from interlock.core.model import Model, Route
from interlock.core.pricing import Price

#: Capability names as the pages print them, in the order they are listed.
CAPABILITY_LABELS: dict[str, str] = {
    "streaming": "Streaming",
    "structured_outputs": "Structured outputs",
    "tools": "Tool calling",
    "vision": "Vision",
    "reasoning": "Reasoning",
    "prompt_caching": "Prompt caching",
    "pdf_input": "PDF input",
    "attachments": "File input",
    "audio_input": "Audio input",
    "temperature": "Temperature",
}

#: ``sort=`` values of the index, with their labels.
SORTS: dict[str, str] = {
    "lab": "Lab, then name",
    "name": "Name",
    "newest": "Newest first",
    "context": "Largest context",
    "price_in": "Cheapest input",
    "price_out": "Cheapest output",
    "ttft": "Fastest first token (live)",
    "tps": "Most tokens/s (live)",
}

_BIG = float("inf")


def usd(picousd: int | None) -> str:
    """Picodollars as dollars: six decimals below a cent, four above."""
    if picousd is None:
        return "—"
    usd = picousd / 1e12
    return f"${usd:.6f}" if usd < 0.01 else f"${usd:,.4f}"


def utc_when(epoch: float | None) -> str:
    """Epoch seconds as UTC date and time to the millisecond."""
    if epoch is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


def price(micro: int | None) -> str:
    """``400_000`` micro-USD per 1M tokens -> ``"$0.40"``; ``"—"`` when the vendor lists none."""
    return "—" if micro is None else f"${usd_per_million(micro)}"


def tokens_short(count: int | None) -> str:
    """``1_047_576`` -> ``"1.05M"``, ``128_000`` -> ``"128K"``."""
    if not count:
        return "—"
    if count >= 1_000_000:
        return f"{count / 1_000_000:.3g}M"
    if count >= 1000:
        return f"{count / 1000:.3g}K"
    return str(count)


def tokens_exact(count: int | None) -> str:
    return f"{count:,}" if count else "—"


def modalities(inputs: Sequence[str], outputs: Sequence[str]) -> str:
    """``"text+image in · text out"``."""
    return f"{'+'.join(inputs) or 'text'} in · {'+'.join(outputs) or 'text'} out"


def model_path(model_id: str) -> str:
    """The model page's path: ``/models/openai/gpt-4.1-mini`` (each segment percent-encoded)."""
    return "/models/" + quote(model_id, safe="/")


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _tps(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} tok/s"


def _figures(stats: Stats, model: Model, route: Route) -> Mapping[str, float] | None:
    return stats.get((route.vendor, route.vendor_model_id)) or stats.get((route.vendor, model.id))


def _freshest(figures: Mapping[str, float], field: str) -> float | None:
    for window in ("5m", "30m", "1d"):
        value = figures.get(f"{field}_{window}")
        if value is not None:
            return value
    return None


SIMULATOR = "simulator"


def simulated(model: Model, live_vendors: Collection[str]) -> bool:
    """The simulator answers for this model here: it is enabled and no live vendor serves the model."""
    return SIMULATOR in live_vendors and not any(v in live_vendors for v in model.vendors)


@dataclass(frozen=True, slots=True)
class Live:
    """A model's best live figures over its routes here (lowest p50 TTFT, highest tokens/s)."""

    ttft_ms: float | None
    tps: float | None


def best_live(stats: Stats, model: Model, live_vendors: Collection[str]) -> Live:
    if not stats:
        return Live(None, None)
    ttfts: list[float] = []
    speeds: list[float] = []
    measured = [_figures(stats, model, route) for route in model.routes]
    if simulated(model, live_vendors):
        measured.append(stats.get((SIMULATOR, model.id)))
    for figures in measured:
        if figures:
            if (t := figures.get("latency_ms")) is not None:
                ttfts.append(t)
            if (s := figures.get("throughput_tps")) is not None:
                speeds.append(s)
    return Live(min(ttfts) if ttfts else None, max(speeds) if speeds else None)


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True, slots=True)
class Filters:
    lab: str = ""
    vendor: str = ""
    capability: str = ""
    modality: str = ""
    q: str = ""
    sort: str = "lab"

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        sort = query.get("sort", "lab")
        return cls(
            lab=query.get("lab", "").strip(),
            vendor=query.get("vendor", "").strip(),
            capability=query.get("capability", "").strip(),
            modality=query.get("modality", "").strip(),
            q=query.get("q", "").strip()[:200],
            sort=sort if sort in SORTS else "lab",
        )

    @property
    def active(self) -> bool:
        return bool(self.lab or self.vendor or self.capability or self.modality or self.q)


def _matches(model: Model, f: Filters) -> bool:
    if f.lab and model.lab != f.lab:
        return False
    if f.vendor and f.vendor not in model.vendors:
        return False
    if f.capability and f.capability not in model.capabilities:
        return False
    if f.modality and f.modality not in model.input_modalities and f.modality not in model.output_modalities:
        return False
    if f.q:
        needle = f.q.lower()
        if needle not in model.id.lower() and needle not in model.name.lower():
            return False
    return True


def _sort_key(sort: str, model: Model, live: Live) -> tuple[Any, ...]:
    ref = model.reference_route
    if sort == "name":
        return (model.name.lower(), model.id)
    if sort == "context":
        return (-(model.context_window or 0), model.id)
    if sort == "price_in":
        value = ref.price.input if ref is not None else None
        return (_BIG if value is None else value, model.id)
    if sort == "price_out":
        value = ref.price.output if ref is not None else None
        return (_BIG if value is None else value, model.id)
    if sort == "ttft":
        return (_BIG if live.ttft_ms is None else live.ttft_ms, model.id)
    if sort == "tps":
        return (_BIG if live.tps is None else -live.tps, model.id)
    return (model.lab, model.name.lower(), model.id)


def _fixed_row(model: Model) -> Mapping[str, Any]:
    """The part of a model's index row that only the catalog decides (formatted once, in :class:`Index`)."""
    ref = model.reference_route
    return MappingProxyType({
        "id": model.id,
        "name": model.name,
        "lab": model.lab,
        "href": model_path(model.id),
        "modalities": modalities(model.input_modalities, model.output_modalities),
        "context": tokens_short(model.context_window),
        "context_exact": tokens_exact(model.context_window),
        "price_in": price(ref.price.input if ref else None),
        "price_out": price(ref.price.output if ref else None),
        "price_cache_read": price(ref.price.cache_read if ref else None),
        "capabilities": tuple(CAPABILITY_LABELS[c] for c in CAPABILITY_LABELS
                              if c in model.capabilities and c != "temperature"),
        "released": model.release_date or "—",
    })


class Index:
    """What the index shows that only the catalog decides, computed once per worker (the catalog is fixed)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.fixed = {m.id: _fixed_row(m) for m in catalog.models}
        self.labs = sorted({m.lab for m in catalog.models})
        self.vendors = sorted(catalog.vendors)
        self.modalities = sorted({x for m in catalog.models for x in (*m.input_modalities, *m.output_modalities)})

    def view(self, live_vendors: Collection[str], stats: Stats, filters: Filters) -> dict[str, Any]:
        """The ``/models`` page: the filter form's choices and one row per matching model."""
        picked = [(m, best_live(stats, m, live_vendors)) for m in self.catalog.models if _matches(m, filters)]
        if filters.sort == "newest":  # undated models last
            picked.sort(key=lambda pair: (pair[0].release_date or "", pair[0].id), reverse=True)
        else:
            picked.sort(key=lambda pair: _sort_key(filters.sort, pair[0], pair[1]))
        simulator_live = SIMULATOR in live_vendors
        rows = []
        for model, live in picked:
            here = [v for v in model.vendors if v in live_vendors]
            rows.append({
                **self.fixed[model.id],
                "ttft": _ms(live.ttft_ms),
                "tps": _tps(live.tps),
                "vendors_here": [SIMULATOR] if simulator_live and not here else here,
            })
        return {
            "rows": rows,
            "total": len(self.catalog.models),
            "filters": filters,
            "labs": self.labs,
            "vendors": self.vendors,
            "capabilities": [(c, CAPABILITY_LABELS[c]) for c in CAPABILITY_LABELS],
            "modalities": self.modalities,
            "sorts": list(SORTS.items()),
        }


# --------------------------------------------------------------------------- the model page


def vendor_name(catalog: Catalog, vendor: str) -> str:
    meta = catalog.meta.get("vendors", {})
    info = meta.get(vendor) if isinstance(meta, Mapping) else None
    return str(info.get("name", vendor)) if isinstance(info, Mapping) else vendor


def _route_row(catalog: Catalog, model: Model, route: Route, live_vendors: Collection[str],
               stats: Stats, *, simulator: bool = False) -> dict[str, Any]:
    p = route.price
    figures = (stats.get((SIMULATOR, model.id)) if simulator else _figures(stats, model, route)) or {}
    p95 = _freshest(figures, "ttft_p95_ms")
    if simulator:
        return {**_route_row(catalog, model, route, live_vendors, stats), "vendor": SIMULATOR,
                "vendor_name": "Simulator", "vendor_model_id": f"priced as {route.vendor}", "zdr": "yes",
                "live": True, "reference": False, "status": None, "simulator": True,
                "ttft_p50": _ms(figures.get("latency_ms")), "ttft_p95": _ms(_freshest(figures, "ttft_p95_ms")),
                "tps": _tps(figures.get("throughput_tps"))}
    return {
        "vendor": route.vendor,
        "vendor_name": vendor_name(catalog, route.vendor),
        "vendor_model_id": route.vendor_model_id,
        "context": tokens_short(route.context_window or model.context_window),
        "context_exact": tokens_exact(route.context_window or model.context_window),
        "input": price(p.input),
        "output": price(p.output),
        "cache_read": price(p.cache_read),
        "cache_write": price(p.cache_write),
        "zdr": "yes" if route.zdr else ("no" if route.zdr is False else "unknown"),
        "live": route.vendor in live_vendors,
        "reference": route is model.reference_route,
        "status": route.status,
        "simulator": False,
        "ttft_p50": _ms(figures.get("latency_ms")),
        "ttft_p95": _ms(p95),
        "tps": _tps(figures.get("throughput_tps")),
    }


def code_samples(base_url: str, model_id: str) -> list[tuple[str, str, str]]:
    """(id, title, code) of each client, with this gateway's base URL and the model filled in."""
    openai_py = (
        "from openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base_url}/v1", api_key="YOUR_INTERLOCK_KEY")\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{model_id}",\n'
        '    messages=[{"role": "user", "content": "Hello!"}],\n'
        ")\n"
        "print(reply.choices[0].message.content)\n"
    )
    curl = (
        f"curl {base_url}/v1/chat/completions \\\n"
        '  -H "Authorization: Bearer $INTERLOCK_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f'  -d \'{{"model": "{model_id}", "messages": [{{"role": "user", "content": "Hello!"}}]}}\'\n'
    )
    anthropic_py = (
        "import anthropic\n\n"
        f'client = anthropic.Anthropic(base_url="{base_url}", api_key="YOUR_INTERLOCK_KEY")\n'
        "message = client.messages.create(\n"
        f'    model="{model_id}",\n'
        "    max_tokens=1024,\n"
        '    messages=[{"role": "user", "content": "Hello!"}],\n'
        ")\n"
        "print(message.content[0].text)\n"
    )
    # The AI SDK's OpenAI provider; .chat() keeps it on Chat Completions (its default is the Responses API,
    # which interlock serves too).
    vercel_ai = (
        'import { createOpenAI } from "@ai-sdk/openai";\n'
        'import { generateText } from "ai";\n\n'
        f'const interlock = createOpenAI({{ baseURL: "{base_url}/v1", apiKey: process.env.INTERLOCK_KEY }});\n'
        f'const {{ text }} = await generateText({{ model: interlock.chat("{model_id}"), prompt: "Hello!" }});\n'
        "console.log(text);\n"
    )
    langchain = (
        "from langchain_openai import ChatOpenAI\n\n"
        f'llm = ChatOpenAI(base_url="{base_url}/v1", api_key="YOUR_INTERLOCK_KEY", model="{model_id}")\n'
        'print(llm.invoke("Hello!").content)\n'
    )
    return [("openai-python", "OpenAI Python SDK", openai_py), ("curl", "curl", curl),
            ("anthropic-python", "Anthropic Python SDK", anthropic_py),
            ("vercel-ai", "Vercel AI SDK (TypeScript)", vercel_ai), ("langchain", "LangChain (Python)", langchain)]


def embed_snippets(base_url: str, model: Model) -> list[tuple[str, str, str]]:
    """(id, title, snippet) for the badge at ``/embed/{lab}/{model}.svg``; the name escaped for HTML."""
    page = f"{base_url}{model_path(model.id)}"
    badge = f"{base_url}/embed/{quote(model.id, safe='/')}.svg"
    alt = f"{model.name} on interlock"
    html = f'<a href="{escape(page)}"><img src="{escape(badge)}" alt="{escape(alt)}"></a>'
    md_alt = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    markdown = f"[![{md_alt}]({badge})]({page})"
    return [("embed-html", "HTML", html), ("embed-markdown", "Markdown", markdown)]


def model_view(catalog: Catalog, model: Model, live_vendors: Collection[str], stats: Stats,
               base_url: str, regions: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """The ``/models/{lab}/{model}`` page."""
    # Newest first: the models a reader of this page most likely compares it with.
    siblings = sorted((m for m in catalog.models if m.lab == model.lab and m.id != model.id),
                      key=lambda m: (m.release_date or "", m.id), reverse=True)
    more = [{"name": m.name, "href": model_path(m.id), "released": m.release_date or ""} for m in siblings]
    routes = [_route_row(catalog, model, r, live_vendors, stats) for r in model.routes]
    if simulated(model, live_vendors) and model.reference_route is not None:
        routes.insert(0, _route_row(catalog, model, model.reference_route, live_vendors, stats, simulator=True))
    for row in routes:
        # A live instance's declared or derived regions; a route not configured here runs nowhere here.
        row["regions"] = ", ".join((regions or {}).get(row["vendor"], ())) if row["live"] else ""
    return {
        "model": model,
        "id": model.id,
        "name": model.name,
        "lab": model.lab,
        "lab_href": f"/models?lab={quote(model.lab, safe='')}",
        "compare_href": f"/compare?m={quote(model.id, safe='')}",
        "modalities": modalities(model.input_modalities, model.output_modalities),
        "context": tokens_short(model.context_window),
        "context_exact": tokens_exact(model.context_window),
        "max_output": tokens_short(model.max_output),
        "max_output_exact": tokens_exact(model.max_output),
        "released": model.release_date or "unknown",
        "knowledge": model.knowledge or "unknown",
        "open_weights": model.open_weights,
        "routes": routes,
        "simulated": simulated(model, live_vendors),
        "capabilities": [(label, c in model.capabilities) for c, label in CAPABILITY_LABELS.items()],
        "benchmarks": sorted(model.benchmarks.items()),
        "samples": code_samples(base_url, model.id),
        "embeds": embed_snippets(base_url, model),
        "more_by_lab": more[:12],
    }


# --------------------------------------------------------------------------- side by side

MAX_COMPARE = 4


def compare_view(catalog: Catalog, ids: Sequence[str], live_vendors: Collection[str],
                 stats: Stats) -> dict[str, Any]:
    """``/compare?m=a&m=b``: up to four models side by side (facts, reference prices, live figures, benchmarks)."""
    models: list[Model] = []
    unknown: list[str] = []
    for model_id in ids[:MAX_COMPARE]:
        found = catalog.get(model_id)
        if found is None:
            unknown.append(model_id)
        elif found not in models:
            models.append(found)
    columns = []
    for m in models:
        ref = m.reference_route
        live = best_live(stats, m, live_vendors)
        here = [v for v in m.vendors if v in live_vendors]
        columns.append({
            "id": m.id, "name": m.name, "href": model_path(m.id),
            "facts": [m.lab, modalities(m.input_modalities, m.output_modalities),
                      f"{tokens_short(m.context_window)} ({tokens_exact(m.context_window)})",
                      tokens_exact(m.max_output), m.release_date or "—", m.knowledge or "—"],
            "prices": [price(ref.price.input if ref else None), price(ref.price.output if ref else None),
                       price(ref.price.cache_read if ref else None), price(ref.price.cache_write if ref else None),
                       ref.vendor if ref else "—"],
            "live": [_ms(live.ttft_ms), _tps(live.tps),
                     ", ".join(here) or (SIMULATOR if SIMULATOR in live_vendors else "none")],
            "capabilities": [c in m.capabilities for c in CAPABILITY_LABELS],
        })
    bench_names = sorted({name for m in models for name in m.benchmarks})
    return {
        "columns": columns,
        "unknown": unknown,
        "too_many": len(ids) > MAX_COMPARE,
        "max": MAX_COMPARE,
        "slots": [m.id for m in models] + [""] * (MAX_COMPARE - len(models)),
        "fact_labels": ["Lab", "Modalities", "Context", "Max output", "Released", "Knowledge cutoff"],
        "price_labels": ["Input /1M", "Output /1M", "Cache read /1M", "Cache write /1M", "Priced at"],
        "live_labels": ["p50 TTFT", "Speed", "Served here by"],
        "capability_labels": list(CAPABILITY_LABELS.values()),
        "benchmarks": [(name, [f"{m.benchmarks[name]:g}" if name in m.benchmarks else "—" for m in models])
                       for name in bench_names],
        "all_ids": [m.id for m in catalog.models],
    }


def route_price(catalog: Catalog, model_id: str, vendor: str) -> Price | None:
    """The catalog price of ``vendor``'s route for ``model_id``; the simulator is priced as the model's
    reference route (as the planner prices it)."""
    model = catalog.get(model_id)
    if model is None:
        return None
    route = model.route(vendor) or (model.reference_route if vendor == "simulator" else None)
    return route.price if route is not None else None
