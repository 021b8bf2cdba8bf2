"""The ``difficulty`` strategy: weak tier or strong tier, by how hard the request looks.

A difficulty policy (``routing/policies.py``) has two tiers of targets. For each request the scorer
(``routing/difficulty_model.py``: text features, counted in C where the extension was built, and linear
models trained by ``make train-router``) estimates, in [0, 1], how much the strong tier is needed; a score at
or above the policy's threshold goes to the strong tier, any other to the weak tier. Within the tier, the
policy's ``tier_strategy`` ranks the targets; the other tier follows as failover when ``fallback_across_tiers``
allows it.

What is scored: the text of the **last user message** (its text parts joined). The system prompt is left out:
it is the same for every request of an application, and would pull every score towards its own. Earlier turns
are left out too: the question the model must answer now is the last one, and a conversation may change tier
from turn to turn (RouteLLM routes on one turn, as here). A request with no user text scores the empty string.

The threshold is set directly, or calibrated from a share of strong calls: over the score distribution of the
scorer's training prompts (the 101 percentiles stored with its weights), or over the operator's own recorded
traffic (``interlock policies calibrate``, which prints the threshold to put in the config).

A caller who knows better sends ``x-interlock-route-difficulty: force-weak | force-strong`` (``auto`` is the
default).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from interlock.core.errors import InvalidRequest
from interlock.core.policy import DifficultyRule
from interlock.core.trace import Candidate, DifficultyDecision, two_decimals, verdict
from interlock.routing.difficulty_model import ScorerUnavailable, shared_scorer

__all__ = ["HEADER", "ScorerUnavailable", "calibrate", "decide", "prompt_text",
           "shared_scorer", "shipped_threshold", "split", "threshold_for_share"]

HEADER = "x-interlock-route-difficulty"
_FORCED = {"force-weak": "weak", "force-strong": "strong", "auto": None}
#: Characters scored at most: the end of a longer message (the question usually comes last).
MAX_CHARS = 32_000


def prompt_text(request: Mapping[str, Any]) -> str:
    """The text the scorer reads: the last user message's text (see the module's docstring)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                text = content
            elif isinstance(content, list):
                text = "\n".join(part["text"] for part in content if isinstance(part, dict)
                                 and isinstance(part.get("text"), str))
            else:
                text = ""
            return text if len(text) <= MAX_CHARS else text[-MAX_CHARS:]
    return ""


def threshold_for_share(quantiles: Sequence[float], share: float) -> float:
    """The threshold that sends ``share`` of a sample to the strong tier, from the sample's 101 percentiles.

    Linear between percentiles; a share of 0 gives a threshold just above the sample's highest score.
    """
    if len(quantiles) != 101:
        raise ValueError(f"expected 101 percentiles, got {len(quantiles)}")
    if share <= 0.0:
        return min(1.0, math.nextafter(quantiles[100], math.inf))
    if share >= 1.0:
        return 0.0
    position = (1.0 - share) * 100.0
    low = int(position)
    frac = position - low
    high = min(low + 1, 100)
    return quantiles[low] + (quantiles[high] - quantiles[low]) * frac


def calibrate(scores: Sequence[float], share: float) -> float:
    """The threshold that sends ``share`` of these scores (a sample of recorded traffic) to the strong tier."""
    if not scores:
        raise ValueError("no scores to calibrate on")
    ordered = sorted(scores)
    n = len(ordered)
    strong = round(share * n)
    if strong <= 0:
        return min(1.0, math.nextafter(ordered[-1], math.inf))
    if strong >= n:
        return 0.0
    # Scores at or above the threshold go strong: the strong-th highest score is the threshold.
    return ordered[n - strong]


def shipped_threshold(share: float) -> float:
    """The threshold for ``share`` over the scorer's training prompts (raises ScorerUnavailable)."""
    return threshold_for_share(shared_scorer().quantiles, share)


def forced_tier(header: str | None) -> str | None:
    """The tier the request header forces (None: the scorer decides); a 400 for anything else."""
    if header is None:
        return None
    value = header.strip().lower()
    if value not in _FORCED:
        raise InvalidRequest(f"Invalid {HEADER}: '{header[:40]}'. Expected force-weak, force-strong or auto.",
                             param=HEADER, code="invalid_value")
    return _FORCED[value]


def decide(rule: DifficultyRule, request: Mapping[str, Any], header: str | None,
           score: float | None = None) -> DifficultyDecision:
    """The tier for ``request``: forced by ``header``, else from ``score`` (a recorded one) or the scorer's."""
    if header is not None:
        tier = forced_tier(header)
        if tier is not None:
            return DifficultyDecision(None, rule.threshold, rule.strong_share, tier, "header")
    source = "replay"
    if score is None:
        score = shared_scorer().score(prompt_text(request))
        source = "score"
    return DifficultyDecision(score, rule.threshold, rule.strong_share,
                              "strong" if score >= rule.threshold else "weak", source)


def split(eligible: list[Candidate], decision: DifficultyDecision,
          rule: DifficultyRule) -> tuple[list[Candidate], list[Candidate]]:
    """The chosen tier's candidates, and the other tier's when failover across tiers is allowed (each in the
    given order: the caller ranks them). When it is not, the other tier's candidates get a reason instead."""
    tier = decision.tier
    chosen: list[Candidate] = []
    other: list[Candidate] = []
    for c in eligible:  # one pass (this runs on every request of a difficulty policy)
        (chosen if c.tier == tier else other).append(c)
    if not other:
        return chosen, other
    if not rule.fallback_across_tiers:
        for c in other:
            c.reason = f"{c.tier} tier (difficulty chose {tier}; fallback_across_tiers is false)"
        return chosen, []
    return chosen, other


def sentence(decision: DifficultyDecision, strategy_phrase: str, in_tier: int, total: int) -> str:
    """The route reason's head for a difficulty decision: the score, then the rest, which is the same for
    every request of a policy that lands in the same tier (formatted once)."""
    score = decision.score
    if score is None:
        return decision.sentence() + _tail(decision.tier, strategy_phrase, in_tier, total)
    return "difficulty " + two_decimals(score) + _after_score(score >= decision.threshold, decision.threshold,
                                                             decision.strong_share, decision.tier,
                                                             strategy_phrase, in_tier, total)


@functools.lru_cache(maxsize=256)
def _after_score(at_least: bool, threshold: float, share: float | None, tier: str, strategy_phrase: str,
                 in_tier: int, total: int) -> str:
    """Bounded: the console's replays may try any number of thresholds."""
    return verdict(at_least, threshold, share, tier) + _tail(tier, strategy_phrase, in_tier, total)


def _tail(tier: str, strategy_phrase: str, in_tier: int, total: int) -> str:
    """The clause after the decision (which targets of which tier follow)."""
    if in_tier == 0:
        return f"; no capable target in the {tier} tier, so the other tier's {total}"
    rest = f", then {total - in_tier} of the other tier" if total > in_tier else ""
    first = "the only capable target in the tier" if in_tier == 1 else f"{strategy_phrase} of {in_tier} in the tier"
    return f"; {first}{rest}"
