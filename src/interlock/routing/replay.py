"""What-if replays of routing policies: recorded requests re-planned under a policy, priced and timed.

The console's Routing policies page (``console/policies.py``) asks "what would the last N requests have
cost, and how fast would they have been, under this policy?". Nothing is sent to any vendor: each recorded
request becomes a stand-in chat request with the same needs (streaming, tools, structured output,
reasoning, images, the requested max tokens) and the prompt length its usage recorded, and the routing
engine's own ``decide`` plans it under the policy. The first eligible target is the answer: its catalog
price applied to the recorded usage (``core.pricing.cost_of``, the function settle bills with) and its
modelled latency (live p50 time to first token plus the output at the live tokens/s; the catalog-derived
latency class of the simulator, ``simulator.latency.default_profile``, where there are no live figures).

The replay engine shares the gateway's live statistics but not its circuit breakers (a replay asks about
the policy, not about this minute's outages), has no prefix affinity, and draws ``weighted`` orders from a
seeded generator, so the same request list gives the same answer. The arithmetic (:func:`usage_of`,
:func:`replay_cost`, :func:`modelled_latency_ms`, :func:`summarize`) is pure and unit-tested.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from interlock.catalog import Catalog
from interlock.config import Settings
from interlock.configfile import ConfigError, Document, Section
from interlock.core.errors import GatewayError
from interlock.core.plan import Target
from interlock.core.policy import Policy
from interlock.core.pricing import Price, Usage, cost_of
from interlock.routing import difficulty
from interlock.routing.circuit import Circuits
from interlock.routing.engine import RoutingEngine
from interlock.routing.planner import Planner
from interlock.routing.policies import parse_policy
from interlock.routing.stats import LiveStats
from interlock.simulator.latency import default_profile

#: The name an edited policy is planned under; only the replay's own planner knows it (a configured policy
#: of this name would be shadowed there, never in the gateway's planner).
EDITED = "what-if"
MAX_POLICY_CHARS = 10_000
#: Inbound APIs whose requests are chat requests (embeddings are not re-planned).
_CHAT_INBOUND = ("openai.chat", "anthropic.messages", "openai.responses", "")
_NO_ENV: Mapping[str, str] = MappingProxyType({})
_STUB_TOOL = {"type": "function", "function": {"name": "replayed_tool", "parameters": {"type": "object"}}}


def parse_policy_text(text: str, catalog: Catalog, settings: Settings, name: str = EDITED) -> Policy:
    """A policy body as YAML or JSON (``targets``, ``strategy``, ...), validated as the config validates it.

    Raises :class:`ConfigError` naming the line and key (``policy:3: targets[0]: ...``). ``${VAR}``
    references are not expanded: a form must not read the gateway's environment.
    """
    if len(text) > MAX_POLICY_CHARS:
        raise ConfigError(f"policy: longer than {MAX_POLICY_CHARS:,} characters")
    if not text.strip():
        raise ConfigError("policy: empty: give at least targets (a list of model names)")
    doc = Document.parse(text, "policy")
    return parse_policy(name, Section(doc, (), doc.data, _NO_ENV), catalog, settings)


# ----------------------------------------------------------------- pure arithmetic


def _count(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def usage_of(row: Mapping[str, Any]) -> Usage | None:
    """The usage a request-log row recorded (None when it recorded none: a failed request)."""
    if row.get("output_tokens") is None and row.get("input_tokens") is None:
        return None
    return Usage(input_tokens=_count(row, "input_tokens"), cache_read_tokens=_count(row, "cache_read_tokens"),
                 cache_write_tokens=_count(row, "cache_write_tokens"), output_tokens=_count(row, "output_tokens"),
                 reasoning_tokens=_count(row, "reasoning_tokens"), estimated=bool(row.get("cost_estimated")))


def replay_cost(price: Price | None, usage: Usage) -> int | None:
    """What ``usage`` costs at ``price``, in pico-USD (None when the route's price is unknown)."""
    if price is None or not price.known:
        return None
    return cost_of(price, usage).picousd


def modelled_latency_ms(ttft_ms: float | None, tokens_per_s: float | None, output_tokens: int) -> float | None:
    """Time to first token plus the output at ``tokens_per_s`` (None without a time to first token)."""
    if ttft_ms is None:
        return None
    if tokens_per_s is None or tokens_per_s <= 0:
        return ttft_ms
    return ttft_ms + output_tokens * 1000.0 / tokens_per_s


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True, slots=True)
class Speed:
    """A target's figures for the latency model, and where they came from."""

    ttft_ms: float | None
    tokens_per_s: float | None
    #: "live" (this gateway's statistics), "catalog" (the model's latency class), "live + catalog", or "none".
    source: str


def combine_speed(live_ttft: float | None, live_tps: float | None, catalog_ttft: float | None,
                  catalog_tps: float | None) -> Speed:
    """Live figures where there are some, the catalog's for the rest, saying which."""
    ttft = live_ttft if live_ttft is not None else catalog_ttft
    tps = live_tps if live_tps is not None else catalog_tps
    used_live = live_ttft is not None or live_tps is not None
    used_catalog = (live_ttft is None and catalog_ttft is not None) or (live_tps is None and catalog_tps is not None)
    source = ("live + catalog" if used_live and used_catalog else "live" if used_live
              else "catalog" if used_catalog else "none")
    return Speed(ttft, tps, source)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One recorded request: what happened, and what the policy would have done."""

    actual_model: str
    actual_vendor: str
    actual_cost: int | None
    actual_latency_ms: float | None
    #: The first eligible target's catalog model and vendor (None when no target could serve it).
    model: str | None
    vendor: str | None
    cost: int | None
    latency_ms: float | None
    latency_source: str
    #: Why the policy has no route for it, when it has none.
    unroutable: str | None = None
    #: Under a difficulty policy: the tier it went to ("weak" / "strong"), or None when it could not be scored.
    tier: str | None = None


def _share(counts: Mapping[str, int], total: int) -> list[tuple[str, int, float]]:
    return sorted(((k, n, n / total if total else 0.0) for k, n in counts.items()), key=lambda x: (-x[1], x[0]))


def _shares(outcomes: Sequence[Outcome], attr: str) -> list[dict[str, Any]]:
    """Requests per value of ``attr`` (model or vendor), actual and replayed, with each side's share."""
    actual: dict[str, int] = {}
    replayed: dict[str, int] = {}
    for o in outcomes:
        a = getattr(o, f"actual_{attr}")
        actual[a] = actual.get(a, 0) + 1
        r = getattr(o, attr)
        if r is not None:
            replayed[r] = replayed.get(r, 0) + 1
    total = len(outcomes)
    keys = sorted(set(actual) | set(replayed), key=lambda k: (-(actual.get(k, 0) + replayed.get(k, 0)), k))
    return [{"name": k, "actual": actual.get(k, 0), "actual_share": actual.get(k, 0) / total if total else 0.0,
             "replayed": replayed.get(k, 0), "replayed_share": replayed.get(k, 0) / total if total else 0.0}
            for k in keys]


def summarize(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Totals of both sides: spend (pico-USD), mean and p50 latency, requests per model and per vendor.

    Spend sums only priced requests on each side (``unpriced`` counts the others); latency only requests
    that have a figure. Requests the policy cannot route count in ``unroutable`` and add nothing.
    """
    actual_lat = [o.actual_latency_ms for o in outcomes if o.actual_latency_ms is not None]
    replay_lat = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    sources: dict[str, int] = {}
    for o in outcomes:
        if o.model is not None:
            sources[o.latency_source] = sources.get(o.latency_source, 0) + 1
    tiers = [o.tier for o in outcomes if o.tier is not None]
    return {
        "requests": len(outcomes),
        #: Under a difficulty policy: requests routed to each tier, and the strong tier's share of them.
        "tiers": {"weak": tiers.count("weak"), "strong": tiers.count("strong")},
        "strong_share": tiers.count("strong") / len(tiers) if tiers else None,
        "unscored": sum(1 for o in outcomes if o.unroutable == UNSCORED),
        "actual_spend": sum(o.actual_cost for o in outcomes if o.actual_cost is not None),
        "replayed_spend": sum(o.cost for o in outcomes if o.cost is not None),
        "actual_unpriced": sum(1 for o in outcomes if o.actual_cost is None),
        "replayed_unpriced": sum(1 for o in outcomes if o.model is not None and o.cost is None),
        "unroutable": sum(1 for o in outcomes if o.model is None),
        "actual_mean_ms": sum(actual_lat) / len(actual_lat) if actual_lat else None,
        "actual_p50_ms": median(actual_lat),
        "replayed_mean_ms": sum(replay_lat) / len(replay_lat) if replay_lat else None,
        "replayed_p50_ms": median(replay_lat),
        "latency_sources": _share(sources, sum(sources.values())),
        "models": _shares(outcomes, "model"),
        "vendors": _shares(outcomes, "vendor"),
    }


# ----------------------------------------------------------------- re-planning


UNSCORED = ("difficulty unknown: the request was not routed by a difficulty policy and its text was not "
            "logged (logging.level: full)")


def difficulty_of(row: Mapping[str, Any]) -> float | None:
    """A recorded request's difficulty score: the one its routing recorded, else its logged text's score
    (None when it has neither: a difficulty replay cannot place it)."""
    trace = row.get("routing_trace")
    recorded = trace.get("difficulty") if isinstance(trace, dict) else None
    if isinstance(recorded, dict) and isinstance(recorded.get("score"), int | float):
        return float(recorded["score"])
    content = row.get("request_content")
    if not isinstance(content, dict):
        return None
    text = difficulty.prompt_text(content)
    if not text:
        return None
    return difficulty.shared_scorer().score(text)


def replay_request(row: Mapping[str, Any], model: str) -> tuple[dict[str, Any], int] | None:
    """A stand-in chat request with the recorded request's needs, and its prompt's tokens.

    None for a row that cannot be replayed: not a chat request, or no usage recorded.
    """
    if (row.get("inbound") or "") not in _CHAT_INBOUND:
        return None
    usage = usage_of(row)
    if usage is None:
        return None
    raw = row.get("routing_trace")
    trace: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    overrides = trace.get("overrides")
    caps = set(overrides.get("required_capabilities") or ()) if isinstance(overrides, dict) else set()
    content: list[dict[str, Any]] = [{"type": "text", "text": "replayed"}]
    if "vision" in caps:
        content.append({"type": "image_url", "image_url": {"url": "data:image/png;base64,"}})
    if "audio_input" in caps:
        content.append({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}})
    if "pdf_input" in caps:
        content.append({"type": "file", "file": {"file_data": ""}})
    request: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if row.get("stream") or "streaming" in caps:
        request["stream"] = True
    if "tools" in caps:
        request["tools"] = [_STUB_TOOL]
    if "structured_outputs" in caps:
        request["response_format"] = {"type": "json_schema", "json_schema": {"name": "r", "schema": {}}}
    if "reasoning" in caps:
        request["reasoning_effort"] = "medium"
    wanted = trace.get("requested_output_tokens")
    if isinstance(wanted, int) and wanted > 0:
        request["max_tokens"] = wanted
    return request, usage.prompt_tokens


class PolicyLab:
    """The configured policies and aliases, and what-if replays over them (built once per worker)."""

    def __init__(self, engine: RoutingEngine, catalog: Catalog, settings: Settings) -> None:
        self.engine = engine
        self.catalog = catalog
        self.settings = settings

    @property
    def policies(self) -> Mapping[str, Policy]:
        return self.engine.planner.policies

    @property
    def aliases(self) -> Mapping[str, str]:
        return self.engine.planner.aliases

    def parse(self, text: str) -> Policy:
        """An edited policy (see :func:`parse_policy_text`)."""
        return parse_policy_text(text, self.catalog, self.settings)

    def replayer(self, policy: Policy, seed: int = 0) -> Replayer:
        base = self.engine.planner
        planner = Planner(base.catalog, base.live, base.configured, base.aliases,
                          {**base.policies, policy.name: policy})
        engine = RoutingEngine(planner, circuits=Circuits(), stats=self.engine.stats,
                               rng=random.Random(seed).random)
        engine.regions = self.engine.regions
        return Replayer(engine, policy.name, self.engine.stats, policy.difficulty is not None)


class Replayer:
    """Re-plans recorded requests under one policy (see the module's docstring)."""

    def __init__(self, engine: RoutingEngine, name: str, stats: LiveStats, tiered: bool = False) -> None:
        self.engine = engine
        self.name = name
        self.stats = stats
        #: A difficulty policy: each request needs its difficulty score (:func:`difficulty_of`).
        self.tiered = tiered
        self._speeds: dict[str, Speed] = {}

    def speed(self, target: Target) -> Speed:
        speed = self._speeds.get(target.key)
        if speed is None:
            summary = self.stats.summary(target.key)
            live_ttft = summary.best("ttft_p50_ms") if summary is not None else None
            live_tps = summary.best("tokens_per_s") if summary is not None else None
            profile = default_profile(target.model) if target.model is not None else None
            speed = self._speeds[target.key] = combine_speed(
                live_ttft, live_tps, profile.ttft_p50 * 1000.0 if profile is not None else None,
                profile.tps_p50 if profile is not None else None)
        return speed

    def one(self, row: Mapping[str, Any]) -> Outcome | None:
        """One recorded request replayed (None when the row is not a chat request with usage)."""
        made = replay_request(row, self.name)
        if made is None:
            return None
        request, prompt_tokens = made
        usage = usage_of(row)
        assert usage is not None
        actual_cost = row.get("cost_picousd")
        actual_latency = row.get("duration_ms")
        actual = (str(row.get("model") or row.get("requested_model") or "—"), str(row.get("vendor") or "—"),
                  int(actual_cost) if actual_cost is not None else None,
                  float(actual_latency) if actual_latency is not None else None)
        score = None
        if self.tiered:
            score = difficulty_of(row)
            if score is None:
                return Outcome(*actual, None, None, None, None, "none", UNSCORED)
        try:
            trace, _ = self.engine.decide(request, input_tokens=prompt_tokens, difficulty_score=score)
        except GatewayError as err:
            return Outcome(*actual, None, None, None, None, "none", err.message)
        first = trace.order[0]
        speed = self.speed(first)
        tier = trace.difficulty.tier if trace.difficulty is not None else None
        return Outcome(*actual, first.model_id, first.vendor_id, replay_cost(first.price, usage),
                       modelled_latency_ms(speed.ttft_ms, speed.tokens_per_s, usage.output_tokens), speed.source,
                       tier=tier)

    def run(self, rows: Iterable[Mapping[str, Any]]) -> list[Outcome]:
        return [o for o in (self.one(r) for r in rows) if o is not None]
