"""Filters and ranking strategies over a request's candidate targets.

Filters run first and each one names its reason, because "why was this vendor
not used?" is the first question an operator asks. Strategies then order
what is left; every score is "lower is better" so one sort serves all of
them, and ties keep the configured order (stable sort), which makes
``priority`` the natural tie-breaker everywhere.

Unknown figures are not treated as extremes: a target without live latency
data gets the median of those that have some (so it is explored, not starved
or favoured), and a missing quality score gets the median score.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interlock.catalog.render import supported_parameters
from interlock.core.policy import Policy
from interlock.core.trace import Candidate
from interlock.routing.circuit import Circuits
from interlock.routing.overrides import ProviderPrefs
from interlock.routing.stats import LiveStats, Summary
from interlock.vendors.registry import returns_logprobs

DEFAULT_OUTPUT_TOKENS = 500
MAX_ASSUMED_OUTPUT = 1000
_PARAMS_CHECKED = frozenset({"tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning",
                             "reasoning_effort", "seed", "frequency_penalty", "presence_penalty", "temperature",
                             "top_p", "stop", "stream_options"})

#: Parameters whose support depends on the vendor's API rather than the model (``returns_logprobs``).
_VENDOR_PARAMS = frozenset({"logprobs"})


@dataclass(slots=True)  # one per request: not frozen (cheaper to build); never mutated
class Needs:
    """What a request requires of a target."""

    capabilities: frozenset[str]
    input_tokens: int
    #: The output limit the request asked for (0 = none given).
    output_tokens: int
    params: frozenset[str]

    def __init__(self, capabilities: frozenset[str], input_tokens: int, output_tokens: int,
                 params: frozenset[str]) -> None:
        """Written out: the compiled build compiles a dataclass's own __init__, not the generated one."""
        self.capabilities = capabilities
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.params = params

    @property
    def context_needed(self) -> int:
        return self.input_tokens + self.output_tokens


def required_capabilities(request: Mapping[str, Any]) -> frozenset[str]:
    caps: set[str] = set()
    if request.get("stream") is True:
        caps.add("streaming")
    if request.get("tools") or request.get("functions"):
        caps.add("tools")
    response_format = request.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        caps.add("structured_outputs")
    if request.get("reasoning_effort") is not None or isinstance(request.get("reasoning"), dict):
        caps.add("reasoning")
    for message in request.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                ptype = part.get("type") if isinstance(part, dict) else None
                if ptype == "image_url":
                    caps.add("vision")
                elif ptype == "input_audio":
                    caps.add("audio_input")
                elif ptype == "file":
                    caps.add("pdf_input")
    return frozenset(caps)


def output_reason(most: int, wanted: int) -> str:
    """The filter reason of a target whose maximum output is below the request's max tokens."""
    return f"max output {most:,} < {wanted:,} tokens requested"


def filter_reason(c: Candidate, needs: Needs, policy: Policy, prefs: ProviderPrefs, circuits: Circuits) -> str | None:
    """Why this candidate may not serve the request, or None."""
    t = c.target
    rules = policy.filters
    if prefs.only and t.slug not in prefs.only:
        return "not in provider.only"
    if prefs.ignore and t.slug in prefs.ignore:
        return "in provider.ignore"
    if rules.vendors and t.vendor.id not in rules.vendors:
        return "vendor not allowed by the policy"
    if rules.exclude_vendors and t.vendor.id in rules.exclude_vendors:
        return "vendor excluded by the policy"
    caps = t.capabilities
    wanted = needs.capabilities | rules.capabilities if rules.capabilities else needs.capabilities
    if caps is not None and wanted and not wanted <= caps:
        return "no " + ", ".join(sorted(wanted - caps)) + " support"
    window = t.context_window
    if window is not None and needs.context_needed > window:
        return f"context window {window:,} < {needs.context_needed:,} tokens needed"
    most = t.max_output
    if most is not None and needs.output_tokens > most:
        return output_reason(most, needs.output_tokens)
    if (rules.zdr or prefs.zdr or prefs.data_collection_deny) and t.zdr is not True:
        return "not zero-data-retention"
    if rules.max_price.active or prefs.max_prompt is not None or prefs.max_completion is not None or (
            prefs.max_request is not None):
        price_reason = _price_reason(c, policy, prefs)
        if price_reason is not None:
            return price_reason
    if prefs.require_parameters:
        if "logprobs" in needs.params and not returns_logprobs(t.vendor.spec, t.vendor_model):
            return "does not support logprobs"
        if caps is not None and t.model is not None:
            unsupported = needs.params - _VENDOR_PARAMS - frozenset(supported_parameters(caps, t.model.lab))
            if unsupported:
                return "does not support " + ", ".join(sorted(unsupported))
    if not circuits.available(t.key):
        return f"circuit open (probe in {circuits.retry_in(t.key):.0f}s)"
    return None


def _price_reason(c: Candidate, policy: Policy, prefs: ProviderPrefs) -> str | None:
    limits = policy.filters.max_price
    max_in = _min(limits.input, prefs.max_prompt)
    max_out = _min(limits.output, prefs.max_completion)
    if max_in is None and max_out is None and prefs.max_request is None:
        return None
    price = c.target.price
    if price is None or not price.known:
        return "price unknown (a max price is set)"
    assert price.input is not None and price.output is not None
    if max_in is not None and price.input > max_in * 1_000_000 + 1e-6:
        return f"input ${price.input / 1e6:g}/M above max ${max_in:g}/M"
    if max_out is not None and price.output > max_out * 1_000_000 + 1e-6:
        return f"output ${price.output / 1e6:g}/M above max ${max_out:g}/M"
    if prefs.max_request is not None and price.request is not None and price.request / 1e9 > prefs.max_request:
        return f"request fee above max ${prefs.max_request:g}"
    return None


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


# ---------------------------------------------------------------------------- scoring


def expected_cost_usd(c: Candidate, input_tokens: int, output_tokens: int, summary: Summary | None) -> float | None:
    """The request's cost at this target: input (less the target's live cache-hit share, at the cache rate)
    plus the expected output. Plain arithmetic on the rate card - the exact ``cost_of`` is for billing."""
    price = c.target.price
    if price is None or price.input is None or price.output is None:
        return None
    if price.tiers:
        price = price.for_prompt(input_tokens)
    inp = price.input or 0
    hit = summary.best("cache_hit") if summary is not None else None
    cached = input_tokens * hit if hit else 0.0
    cache_rate = price.cache_read if price.cache_read is not None else inp
    micro = (input_tokens - cached) * inp + cached * cache_rate + output_tokens * (price.output or 0)
    return micro / 1e12


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _fill_median(values: list[float | None]) -> list[float]:
    known = [v for v in values if v is not None]
    if len(known) == len(values):
        return known
    fill = _median(known) if known else 0.0
    return [fill if v is None else v for v in values]


def _normalise(values: Sequence[float]) -> list[float]:
    """Min-max to [0, 1]; all equal -> all 1."""
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12:
        return [1.0] * len(values)
    return [(v - lo) / (hi - lo) for v in values]


def quality_scores(cands: Sequence[Candidate], policy: Policy) -> list[float]:
    """Weighted benchmark score in [0, 1] per candidate (0.5 each when no weights are configured)."""
    weights = policy.quality_weights
    if not weights or not cands:
        return [0.5] * len(cands)
    total = [0.0] * len(cands)
    weight_sum = 0.0
    for metric, weight in weights.items():
        if weight <= 0:
            continue
        raw = [_metric(c, metric, policy) for c in cands]
        present = [i for i, v in enumerate(raw) if v is not None]
        if not present:
            normed = [0.5] * len(cands)
        else:
            scaled = _normalise([raw[i] for i in present])  # type: ignore[misc]
            fill = _median(scaled)
            normed = [fill] * len(cands)
            for i, value in zip(present, scaled, strict=True):
                normed[i] = value
        for i, value in enumerate(normed):
            total[i] += weight * value
        weight_sum += weight
    return [t / weight_sum for t in total] if weight_sum else [0.5] * len(cands)


def _metric(c: Candidate, metric: str, policy: Policy) -> float | None:
    t = c.target
    for name in (t.key, t.model_id):
        own = policy.scores.get(name)
        if own is not None and metric in own:
            return own[metric]
    if t.model is not None:
        value = t.model.benchmarks.get(metric)
        if value is not None:
            return float(value)
    return None


def rank(cands: list[Candidate], strategy: str, policy: Policy, needs: Needs, stats: LiveStats,
         rng: Callable[[], float] = random.random) -> list[Candidate]:
    """Order eligible candidates best first, filling ``score`` and ``detail``; stable on ties."""
    if len(cands) <= 1 or strategy == "priority":
        return cands
    if strategy == "weighted":
        keyed = []
        for c in cands:
            weight = max(c.target.weight, 1e-9)
            draw = rng() ** (1.0 / weight)
            c.score = -draw
            c.detail = {"weight": weight}
            keyed.append(c)
        return sorted(keyed, key=lambda c: c.score or 0.0)
    output = policy.expected_output_tokens or min(needs.output_tokens or DEFAULT_OUTPUT_TOKENS, MAX_ASSUMED_OUTPUT)
    costs: list[float | None] = []
    ttfts: list[float | None] = []
    tps: list[float | None] = []
    now = stats.clock()
    summary_of = stats.summary
    for c in cands:
        summary = summary_of(c.target.key, now)
        detail = c.detail = {}
        if strategy == "cost" or strategy == "balanced":
            cost = expected_cost_usd(c, needs.input_tokens, output, summary)
            costs.append(cost)
            detail["expected_cost_usd"] = cost
        if strategy == "latency" or strategy == "balanced":
            ttft = summary.best("ttft_p50_ms") if summary is not None else None
            ttfts.append(ttft)
            detail["ttft_p50_ms"] = ttft
        if strategy == "throughput":
            speed = summary.best("tokens_per_s") if summary is not None else None
            tps.append(speed)
            detail["tokens_per_s"] = speed
    if strategy == "cost":
        for c, cost in zip(cands, costs, strict=True):
            c.score = cost if cost is not None else float("inf")
    elif strategy == "latency":
        for c, ttft in zip(cands, _fill_median(ttfts), strict=True):
            c.score = ttft
    elif strategy == "throughput":
        for c, speed in zip(cands, _fill_median(tps), strict=True):
            c.score = -speed
    elif strategy == "quality":
        for c, q in zip(cands, quality_scores(cands, policy), strict=True):
            c.detail = {"quality": q}
            c.score = -q
    elif strategy == "balanced":
        quality = quality_scores(cands, policy)
        cheap = [1.0 - v for v in _normalise(_fill_median(costs))]
        fast = [1.0 - v for v in _normalise(_fill_median(ttfts))]
        w = policy.balance
        for i, c in enumerate(cands):
            if c.detail is not None:
                c.detail["quality"] = quality[i]
            c.score = -(w.get("cost", 0.0) * cheap[i] + w.get("latency", 0.0) * fast[i]
                        + w.get("quality", 0.0) * quality[i])
    return sorted(cands, key=lambda c: c.score if c.score is not None else 0.0)


def request_params(request: Mapping[str, Any]) -> frozenset[str]:
    params = frozenset(k for k in request if k in _PARAMS_CHECKED)
    if request.get("logprobs") or request.get("top_logprobs") is not None:
        params |= {"logprobs"}
    return params
