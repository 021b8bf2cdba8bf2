"""The routing decision trace: what was considered, what was skipped and why, what was tried.

Routing that cannot be explained cannot be trusted: when a request lands on
an unexpected vendor the operator needs the reason at hand. Every response
carries the target used (``x-interlock-route``) and one plain sentence
(``x-interlock-route-reason``); the whole trace - candidates, filters with
reasons, scores, attempts with status and latency - stays with the request
(the ``routing_trace`` column of the request log, and an in-memory LRU so
``GET /v1/generation`` answers before the log's batch flush).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from interlock.core.plan import Target
from interlock.core.policy import Retry

_STRATEGY_PHRASE = {
    "priority": "first in priority order",
    "weighted": "drawn by weight",
    "cost": "cheapest",
    "latency": "fastest to first token",
    "throughput": "highest throughput",
    "quality": "best quality score",
    "balanced": "best balance of cost, latency and quality",
}
_MAX_HEADER = 400


@dataclass(slots=True)
class Attempt:
    """One call to one target."""

    target: str
    vendor: str
    model: str
    started: float
    latency_ms: float | None = None
    status: int | None = None
    error: str | None = None
    code: str | None = None
    #: "answered", "failed" or "skipped" (circuit opened while the request was in flight).
    outcome: str = "failed"
    retry_after: float | None = None
    #: Where the route runs (its vendor instance's regions), for data residency's record.
    regions: tuple[str, ...] = ()

    # Written out (the fields' order and defaults): the compiled build (mypyc) compiles a dataclass's own
    # __init__, not the one dataclasses generates, which it leaves interpreted (4,400 instructions a call).
    def __init__(self, target: str, vendor: str, model: str, started: float, latency_ms: float | None = None,
                 status: int | None = None, error: str | None = None, code: str | None = None,
                 outcome: str = "failed", retry_after: float | None = None, regions: tuple[str, ...] = ()) -> None:
        self.target = target
        self.vendor = vendor
        self.model = model
        self.started = started
        self.latency_ms = latency_ms
        self.status = status
        self.error = error
        self.code = code
        self.outcome = outcome
        self.retry_after = retry_after
        self.regions = regions

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "vendor": self.vendor, "model": self.model,
                               "outcome": self.outcome, "status": self.status,
                               "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3)}
        if self.error is not None:
            out["error"] = self.error
        if self.code is not None:
            out["code"] = self.code
        if self.retry_after is not None:
            out["retry_after_s"] = self.retry_after
        if self.regions:
            out["regions"] = list(self.regions)
        return out


@dataclass(slots=True)
class Candidate:
    target: Target
    #: Index of the model name (request ``model`` = 0, then the ``models`` array) it came from.
    group: int
    #: Why it was filtered out; None when eligible.
    reason: str | None = None
    score: float | None = None
    detail: dict[str, float | None] | None = None
    #: "weak" or "strong" under a difficulty policy.
    tier: str | None = None

    def __init__(self, target: Target, group: int, reason: str | None = None, score: float | None = None,
                 detail: dict[str, float | None] | None = None, tier: str | None = None) -> None:
        """Written out for the compiled build (see :class:`Attempt`)."""
        self.target = target
        self.group = group
        self.reason = reason
        self.score = score
        self.detail = detail
        self.tier = tier

    def to_json(self) -> dict[str, Any]:
        t = self.target
        out: dict[str, Any] = {"target": t.key, "vendor": t.vendor.id, "model": t.model_id, "group": self.group,
                               "eligible": self.reason is None}
        if self.tier is not None:
            out["tier"] = self.tier
        if self.reason is not None:
            out["filtered"] = self.reason
        if self.score is not None:
            out["score"] = round(self.score, 6)
        if self.detail:
            out["detail"] = {k: v for k, v in self.detail.items() if v is not None}
        if t.vendor.regions:
            out["regions"] = list(t.vendor.regions)
        return out


@dataclass(frozen=True, slots=True)
class AffinityDecision:
    """What prefix affinity (``routing/affinity.py``) did for one request."""

    route: str
    age_s: float
    #: True when the affine route was moved ahead of the strategy's first choice.
    moved: bool

    def sentence(self) -> str:
        return f"affinity: prefix served by {self.route} {self.age_s:.0f} s ago"

    def to_json(self) -> dict[str, Any]:
        return {"route": self.route, "age_s": round(self.age_s, 3), "moved": self.moved}


@dataclass(slots=True)  # not frozen: made per request, and a frozen dataclass's __init__ costs more
class DifficultyDecision:
    """What the ``difficulty`` strategy (``routing/difficulty.py``) decided for one request, and why."""

    #: The scorer's estimate that the strong tier is needed, in [0, 1] (None when a header forced the tier).
    score: float | None
    threshold: float
    #: The share of strong calls the threshold was calibrated for (None when set directly).
    strong_share: float | None
    #: "weak" or "strong".
    tier: str
    #: "header" when ``x-interlock-route-difficulty`` chose the tier, "replay" for a recorded score, else "score".
    source: str = "score"

    def __init__(self, score: float | None, threshold: float, strong_share: float | None, tier: str,
                 source: str = "score") -> None:
        """Written out for the compiled build (see :class:`Attempt`)."""
        self.score = score
        self.threshold = threshold
        self.strong_share = strong_share
        self.tier = tier
        self.source = source

    def sentence(self) -> str:
        if self.score is None:
            return f"difficulty: {self.tier} tier forced by the request header"
        return "difficulty " + two_decimals(self.score) + \
            verdict(self.score >= self.threshold, self.threshold, self.strong_share, self.tier)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"score": None if self.score is None else round(self.score, 4),
                               "threshold": round(self.threshold, 4), "tier": self.tier, "source": self.source}
        if self.strong_share is not None:
            out["strong_share"] = self.strong_share
        return out


def verdict(at_least: bool, threshold: float, share: float | None, tier: str) -> str:
    """What follows a difficulty score in the route's reason: " >= threshold 0.57 (strong_share 0.30): strong
    tier"."""
    return f" {'>=' if at_least else '<'} {_threshold_phrase(threshold, share)}: {tier} tier"


#: "0.00" to "1.00", by hundredths.
_HUNDREDTHS = tuple(f"{k / 100:.2f}" for k in range(101))


def two_decimals(x: float) -> str:
    """``f"{x:.2f}"``, from a table for x in (0, 1] away from a rounding midpoint (x * 100 is within 1e-14 of
    the exact product, so the table's pick is the correct rounding there), else formatted: a float's formatting
    costs as much as the rest of a route's reason."""
    scaled = x * 100.0
    if 0.0 < scaled <= 100.0:
        k = int(scaled)
        frac = scaled - k
        if not 0.4999999 < frac < 0.5000001:
            return _HUNDREDTHS[k + 1 if frac > 0.5 else k]
    return f"{x:.2f}"


@functools.lru_cache(maxsize=256)
def _threshold_phrase(threshold: float, share: float | None) -> str:
    """"threshold 0.57 (strong_share 0.30)": a policy's constant, formatted once (a float's formatting costs
    about as much as the rest of the sentence); bounded, since replays may try any number of thresholds."""
    return f"threshold {threshold:.2f}" + (f" (strong_share {share:.2f})" if share is not None else "")


@dataclass(slots=True)
class RoutingTrace:
    requested: str
    names: tuple[str, ...]
    policy: str | None
    strategy: str
    #: The prompt's tokens (``catalog.estimate_chat_tokens``); None when no decision needed the count.
    estimated_input_tokens: int | None
    requested_output_tokens: int
    candidates: list[Candidate]
    #: Eligible targets in the order they will be tried.
    order: tuple[Target, ...]
    #: The decision in one sentence (before any attempt).
    reason: str
    #: The request's routing overrides (a dict, or a view rendered lazily by ``to_json``).
    overrides: Any = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    #: How dispatch retries and fails over (not part of the JSON trace).
    retry: Retry | None = None
    timeout_s: float = 120.0
    #: The request's prefix fingerprint (``routing/affinity.py``), for settle; None without a long prefix.
    prefix: int | None = None
    #: Prefix affinity's part in the decision, when a remembered route was eligible.
    affinity: AffinityDecision | None = None
    #: The difficulty strategy's decision, for a request routed by a difficulty policy.
    difficulty: DifficultyDecision | None = None

    def __init__(self, requested: str, names: tuple[str, ...], policy: str | None, strategy: str,
                 estimated_input_tokens: int | None, requested_output_tokens: int, candidates: list[Candidate],
                 order: tuple[Target, ...], reason: str, overrides: Any = None, attempts: list[Attempt] | None = None,
                 retry: Retry | None = None, timeout_s: float = 120.0, prefix: int | None = None,
                 affinity: AffinityDecision | None = None, difficulty: DifficultyDecision | None = None) -> None:
        """Written out for the compiled build (see :class:`Attempt`); ``overrides`` and ``attempts`` default to
        a new dict and list."""
        self.requested = requested
        self.names = names
        self.policy = policy
        self.strategy = strategy
        self.estimated_input_tokens = estimated_input_tokens
        self.requested_output_tokens = requested_output_tokens
        self.candidates = candidates
        self.order = order
        self.reason = reason
        self.overrides = {} if overrides is None else overrides
        self.attempts = [] if attempts is None else attempts
        self.retry = retry
        self.timeout_s = timeout_s
        self.prefix = prefix
        self.affinity = affinity
        self.difficulty = difficulty

    def outcome_reason(self) -> str:
        """The decision sentence plus what failover did, for the response header."""
        failed = [a for a in self.attempts if a.outcome == "failed"]
        if not failed:
            return self.reason
        answered = next((a for a in self.attempts if a.outcome == "answered"), None)
        parts = [f"{a.target} ({a.status or a.code or 'error'})" for a in failed[:3]]
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        if answered is None:
            return f"{self.reason}; every attempt failed: {', '.join(parts)}{more}"
        return f"{self.reason}; answered by {answered.target} after {', '.join(parts)}{more} failed"

    def headers(self, target: Target | None) -> list[tuple[str, str]]:
        route = target.key if target is not None else (self.order[0].key if self.order else "none")
        return [("x-interlock-route", _header_safe(route)),
                ("x-interlock-route-reason", _header_safe(self.outcome_reason()))]

    def to_json(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "models": list(self.names),
            "policy": self.policy,
            "strategy": self.strategy,
            "estimated_input_tokens": self.estimated_input_tokens,
            "requested_output_tokens": self.requested_output_tokens,
            "reason": self.outcome_reason(),
            "order": [t.key for t in self.order],
            "candidates": [c.to_json() for c in self.candidates],
            "overrides": self.overrides.to_json() if hasattr(self.overrides, "to_json") else self.overrides,
            "attempts": [a.to_json() for a in self.attempts],
            **({"affinity": self.affinity.to_json()} if self.affinity is not None else {}),
            **({"difficulty": self.difficulty.to_json()} if self.difficulty is not None else {}),
        }


_NOT_VISIBLE_ASCII = re.compile(r"[^\x20-\x7e]")


@functools.lru_cache(maxsize=1024)
def _header_safe(text: str) -> str:
    """Header values must be visible ASCII: replace anything else, and keep them short.

    Cached: the same few route keys and reasons recur on every request.
    """
    clean = text if text.isascii() and text.isprintable() else _NOT_VISIBLE_ASCII.sub("?", text)
    return clean if len(clean) <= _MAX_HEADER else clean[: _MAX_HEADER - 3] + "..."


def decision_sentence(strategy: str, eligible: int, skipped: list[Candidate], names: int) -> str:
    """One plain sentence: why the first target, and what was left out."""
    if eligible == 1:
        head = "the only capable target"
    else:
        head = f"{_STRATEGY_PHRASE.get(strategy, strategy)} of {eligible} capable targets"
    if names > 1:
        head += f" (with {names - 1} fallback model{'s' if names > 2 else ''})"
    return head + skipped_notes(skipped)


def strategy_phrase(strategy: str) -> str:
    return _STRATEGY_PHRASE.get(strategy, strategy)


def skipped_notes(skipped: list[Candidate]) -> str:
    """"; a skipped: why; b skipped: why" for the first three skipped candidates ("" when none)."""
    if not skipped:
        return ""
    notes = [f"{c.target.key} skipped: {c.reason}" for c in skipped[:3]]
    if len(skipped) > 3:
        notes.append(f"{len(skipped) - 3} more skipped")
    return "; " + "; ".join(notes)
