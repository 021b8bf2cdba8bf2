"""The model page's "Worth pairing with" and "Facts a buyer asks", derived from catalog data (pure, deterministic).

*Tier*, as used here: a model is of this model's tier when it has every one of
this model's key capabilities (:data:`KEY_CAPABILITIES`) and output
modalities, at least half its context window, was released at most a year
before it (when both dates are known) and, where the two share benchmarks,
scores at least 90% of it on average. Prices compare the reference routes'
blended price, 3 input tokens to 1 output token. Every reason and answer is
built from the figures it names; none is fixed prose.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from interlock.catalog import Catalog
from interlock.console.views import (
    CAPABILITY_LABELS,
    SIMULATOR,
    model_path,
    price,
    simulated,
    tokens_exact,
    tokens_short,
    vendor_name,
)
from interlock.core.model import Model, Route

KEY_CAPABILITIES = ("tools", "structured_outputs", "vision", "reasoning")
MIN_CONTEXT_SHARE = 0.5
MAX_OLDER_DAYS = 365
MIN_BENCH_SHARE = 0.9


def blended(route: Route | None) -> float | None:
    """Micro-USD per 1M tokens at 3 input : 1 output; None when either price is missing."""
    if route is None or route.price.input is None or route.price.output is None:
        return None
    return (3 * route.price.input + route.price.output) / 4


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _key_caps(model: Model) -> tuple[str, ...]:
    return tuple(c for c in KEY_CAPABILITIES if c in model.capabilities)


def _covers(candidate: Model, model: Model, caps: Iterable[str]) -> bool:
    """``candidate`` has ``caps``, ``model``'s input and output modalities and at least half its context."""
    if not all(c in candidate.capabilities for c in caps):
        return False
    if not all(m in candidate.output_modalities for m in model.output_modalities):
        return False
    if not all(m in candidate.input_modalities for m in model.input_modalities):
        return False
    return (candidate.context_window or 0) >= MIN_CONTEXT_SHARE * (model.context_window or 0)


def _bench_share(candidate: Model, model: Model) -> float | None:
    shared = [n for n in model.benchmarks if n in candidate.benchmarks and model.benchmarks[n] > 0]
    if not shared:
        return None
    return sum(candidate.benchmarks[n] / model.benchmarks[n] for n in shared) / len(shared)


def same_tier(candidate: Model, model: Model) -> bool:
    if candidate.id == model.id or not _covers(candidate, model, _key_caps(model)):
        return False
    mine, theirs = _date(model.release_date), _date(candidate.release_date)
    if mine is not None and theirs is not None and (mine - theirs).days > MAX_OLDER_DAYS:
        return False
    share = _bench_share(candidate, model)
    return share is None or share >= MIN_BENCH_SHARE


def _usable(model: Model) -> bool:
    ref = model.reference_route
    return ref is not None and not ref.deprecated and blended(ref) is not None


def _age(model: Model) -> int:
    """Sorts newest first, undated models last."""
    return -(_date(model.release_date) or dt.date.min).toordinal()


def _gap(model: Model, mine: float | None) -> float:
    """How far ``model``'s blended price is from ``mine``, relative, to a tenth."""
    theirs = blended(model.reference_route) or 0.0
    return round(abs(theirs - mine) / mine, 1) if mine else round(theirs, 1)


def _caps_text(caps: Sequence[str]) -> str:
    return ", ".join(CAPABILITY_LABELS[c].lower() for c in caps) or "text chat"


def _prices(model: Model) -> str:
    ref = model.reference_route
    return (f"{price(ref.price.input if ref else None)} in / {price(ref.price.output if ref else None)} out "
            "per 1M")


def _names(catalog: Catalog, vendors: Collection[str]) -> str:
    """Vendors by their display names (``Azure, OpenAI``), as the routes table shows them."""
    return ", ".join(vendor_name(catalog, v) for v in vendors)


def _here(model: Model, live_vendors: Collection[str]) -> list[str]:
    return [v for v in model.vendors if v in live_vendors and v != SIMULATOR]


def _pick(title: str, model: Model, reason: str) -> dict[str, Any]:
    return {"kind": title, "id": model.id, "name": model.name, "lab": model.lab, "href": model_path(model.id),
            "reason": reason}


def cheaper_same_tier(catalog: Catalog, model: Model, taken: Collection[str] = ()) -> dict[str, Any] | None:
    mine = blended(model.reference_route)
    if mine is None:
        return None
    found = [m for m in catalog.models if m.id not in taken and _usable(m) and same_tier(m, model)
             and (blended(m.reference_route) or mine) < mine]
    if not found:
        return None
    # Newest first (a model of the same generation), then the cheapest.
    best = min(found, key=lambda m: (_age(m), blended(m.reference_route), m.id))
    theirs = blended(best.reference_route) or 0.0
    saving = round(100 * (1 - theirs / mine))
    share = _bench_share(best, model)
    bench = f"; {round(share * 100)}% of its shared benchmark scores" if share is not None else ""
    return _pick("Cheaper, same tier", best,
                 f"{saving}% cheaper at a 3:1 input:output mix ({_prices(best)} vs {_prices(model)}); "
                 f"has {_caps_text(_key_caps(model))}, {tokens_short(best.context_window)} context{bench}.")


def reasoning_partner(catalog: Catalog, model: Model, taken: Collection[str] = ()) -> dict[str, Any] | None:
    if "reasoning" in model.capabilities:
        return None
    caps = _key_caps(model)
    found = [m for m in catalog.models if m.id != model.id and m.id not in taken and _usable(m) and "reasoning" in m.capabilities
             and _covers(m, model, caps)]
    if not found:
        return None
    same_lab = [m for m in found if m.lab == model.lab]
    mine = blended(model.reference_route)
    # The closest in price (to a tenth of this model's), then the newest.
    best = min(same_lab or found, key=lambda m: (_gap(m, mine), _age(m), m.id))
    lab = f"same lab ({model.lab})" if best.lab == model.lab else f"from {best.lab}"
    return _pick("Reasoning", best,
                 f"Thinks before it answers, which {model.name} does not; {lab}, keeps {_caps_text(caps)}, "
                 f"{tokens_short(best.context_window)} context; {_prices(best)}.")


def failover_partner(catalog: Catalog, model: Model, live_vendors: Collection[str],
                     taken: Collection[str] = ()) -> dict[str, Any] | None:
    caps = _key_caps(model)
    mine = blended(model.reference_route)
    found = [m for m in catalog.models if m.lab != model.lab and m.id not in taken and _usable(m) and _covers(m, model, caps)]
    if not found:
        return None

    def rank(m: Model) -> tuple[Any, ...]:
        return (not _here(m, live_vendors), _gap(m, mine), _age(m), m.id)

    best = min(found, key=rank)
    here = _here(best, live_vendors)
    where = (f"live here via {_names(catalog, here)}" if here
             else f"not configured here (served by {_names(catalog, best.vendors)})")
    return _pick("Cross-lab failover", best,
                 f"Another lab ({best.lab}) with {_caps_text(caps)} and {tokens_short(best.context_window)} "
                 f"context; {_prices(best)}; {where}.")


def pairings(catalog: Catalog, model: Model, live_vendors: Collection[str]) -> list[dict[str, Any]]:
    """Up to three models worth pairing with ``model``, each with its reason (a model named once)."""
    out: list[dict[str, Any]] = []
    taken: set[str] = set()

    def keep(found: dict[str, Any] | None) -> None:
        if found is not None:
            out.append(found)
            taken.add(found["id"])

    keep(cheaper_same_tier(catalog, model, taken))
    keep(reasoning_partner(catalog, model, taken))
    keep(failover_partner(catalog, model, live_vendors, taken))
    return out


# --------------------------------------------------------------------------- facts


def _range(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return price(low) if low == high else f"{price(low)} to {price(high)}"


def _modality_text(names: Sequence[str]) -> str:
    names = list(names) or ["text"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def facts(catalog: Catalog, model: Model, live_vendors: Collection[str]) -> list[tuple[str, str]]:
    """(question, answer) pairs a buyer asks, each answer computed from the catalog and this gateway."""
    name = model.name
    vendors = model.vendors
    here = _here(model, live_vendors)
    out: list[tuple[str, str]] = []
    if here:
        served = f"{_names(catalog, here)} ({len(here)} of the {len(vendors)} vendors that list it)."
    elif simulated(model, live_vendors):
        served = (f"No vendor of it is configured here ({_names(catalog, vendors) or 'none listed'}); "
                  "the built-in simulator answers for it, at no cost.")
    else:
        served = f"None here: it is listed by {_names(catalog, vendors) or 'no vendor'}, none of them configured."
    out.append((f"Who serves {name} here?", served))
    priced = [r for r in model.routes if r.price.input is not None and r.price.output is not None]
    if priced:
        ins = [r.price.input for r in priced if r.price.input is not None]
        outs = [r.price.output for r in priced if r.price.output is not None]
        out.append(("What does it cost?", f"{_range(ins)} per 1M input tokens and {_range(outs)} per 1M output "
                                          f"tokens, across {len(priced)} priced route{'s' if len(priced) != 1 else ''}."))
        cheapest = min(priced, key=lambda r: (blended(r) or 0.0, r.vendor))
        ties = sorted({r.vendor for r in priced if blended(r) == blended(cheapest)})
        if len(ties) > 1:
            answer = f"A tie: {_names(catalog, ties)} list the same, {price(cheapest.price.input)} in / " \
                     f"{price(cheapest.price.output)} out per 1M."
        else:
            answer = (f"{vendor_name(catalog, cheapest.vendor)}: {price(cheapest.price.input)} in / {price(cheapest.price.output)} out "
                      f"per 1M{' (live here)' if cheapest.vendor in here else ''}.")
        out.append(("Which vendor is cheapest?", answer))
    else:
        out.append(("What does it cost?", "No vendor lists a price for it in the catalog."))
    out.append(("How much context does it take?",
                f"{tokens_exact(model.context_window)} tokens ({tokens_short(model.context_window)})."
                if model.context_window else "The catalog does not say."))
    out.append(("How long can an answer be?",
                f"Up to {tokens_exact(model.max_output)} output tokens." if model.max_output
                else "The catalog does not say."))
    zdr_yes = sorted({r.vendor for r in model.routes if r.zdr})
    zdr_no = sorted({r.vendor for r in model.routes if r.zdr is False})
    if zdr_yes:
        zdr = f"Yes, from {_names(catalog, zdr_yes)}."
    elif zdr_no:
        zdr = f"Not from the vendors that say: {_names(catalog, zdr_no)} keep data; the others do not state it."
    else:
        zdr = f"Unknown: none of its vendors ({_names(catalog, vendors) or 'none listed'}) states it in the catalog."
    out.append(("Is zero data retention available?", zdr))
    out.append(("Is it live on this gateway?",
                f"Yes, through {_names(catalog, here)}." if here
                else ("Through the simulator only (no real vendor configured)." if simulated(model, live_vendors)
                      else "No.")))
    caps = [CAPABILITY_LABELS[c].lower() for c in CAPABILITY_LABELS if c in model.capabilities
            and c not in ("temperature", "streaming")]
    out.append(("What can it read and write?",
                f"Reads {_modality_text(model.input_modalities)}; writes {_modality_text(model.output_modalities)}"
                + (f"; supports {', '.join(caps)}." if caps else ".")))
    return out
