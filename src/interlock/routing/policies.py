"""Routing policies: the ``policies:`` section of ``interlock.yaml``.

A policy is a named, reusable routing decision that callers reach as a model
alias (``model: "support-bot"``)::

    policies:
      support-bot:
        targets:                          # ordered; catalog ids, vendor/model or aliases
          - openai/gpt-4.1-mini
          - {model: anthropic/claude-haiku-4-5, weight: 2}
        strategy: cost                    # priority | weighted | cost | latency | throughput | quality | balanced
                                          # | difficulty (below)
        balance: {cost: 0.5, latency: 0.3, quality: 0.2}
        quality:
          weights: {"Aider Polyglot": 1, support_eval: 2}
          scores: {openai/gpt-4.1-mini: {support_eval: 0.81}}
        expected_output_tokens: 400
        retry: {attempts: 2, backoff_s: 0.2, max_backoff_s: 2, max_retry_after_s: 5}
        timeout_s: 60                     # total deadline across every attempt
        filters: {zdr: true, vendors: [openai, anthropic], exclude_vendors: [openrouter],
                  capabilities: [tools], max_price: {input: 1.0, output: 4.0}}

A ``difficulty`` policy names two tiers instead of ``targets``, and sends each request to one of them by
how hard the prompt looks (``routing/difficulty.py``)::

      smart:
        strategy: difficulty
        tiers:
          weak: [openai/gpt-4.1-nano, groq/llama-3.1-8b-instant]
          strong: [openai/gpt-4.1, anthropic/claude-sonnet-4-5]
        tier_strategy: cost               # ranks the targets within a tier (default priority)
        difficulty: {strong_share: 0.3}   # or {threshold: 0.55}; fallback_across_tiers: true

Validation goes through :class:`~interlock.configfile.Section`, so a mistake
fails the start with the file, line and key, not at the first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from interlock.catalog import CAPABILITIES, Catalog
from interlock.config import Settings
from interlock.configfile import Section
from interlock.core.policy import DifficultyRule, Filters, MaxPrice, Policy, PolicyTarget, Retry
from interlock.routing import difficulty

TIER_STRATEGIES = ("priority", "weighted", "cost", "latency", "throughput", "quality", "balanced")
STRATEGIES = (*TIER_STRATEGIES, "difficulty")
_POLICY_KEYS = ("targets", "strategy", "balance", "quality", "expected_output_tokens", "retry", "timeout_s",
                "filters", "description", "tiers", "tier_strategy", "difficulty")
_DIFFICULTY_KEYS = ("threshold", "strong_share", "fallback_across_tiers")
_RETRY_KEYS = ("attempts", "backoff_s", "max_backoff_s", "max_retry_after_s")
_FILTER_KEYS = ("zdr", "vendors", "exclude_vendors", "capabilities", "max_price")
_PRICE_KEYS = ("input", "output")


def _string_list(section: Section, key: str) -> list[str]:
    raw = section.raw(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise section.error("expected a list of strings", key)
    out: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip():
            raise Section(section.doc, (*section.path, key), {}, section.environ).error(
                f"expected a non-empty string, got {item!r}", i)
        out.append(item.strip())
    return out


def _targets(section: Section, catalog: Catalog, settings: Settings, key: str = "targets",
             what: str = "a policy") -> tuple[PolicyTarget, ...]:
    raw = section.raw(key)
    if not isinstance(raw, list) or not raw:
        raise section.error(f"{what} needs a non-empty list of targets", key)
    holder = Section(section.doc, (*section.path, key), {}, section.environ)
    out: list[PolicyTarget] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            name, weight = item.strip(), 1.0
        elif isinstance(item, dict):
            sub = Section(section.doc, (*section.path, key, i), item, section.environ)
            sub.only("model", "weight")
            name = (sub.string("model") or "").strip()
            weight = sub.number("weight", 1.0, positive=True)
        else:
            raise holder.error(f"expected a model name or {{model, weight}}, got {item!r}", i)
        if not name:
            raise holder.error("a target needs a model name", i)
        problem = _unknown_target(name, catalog, settings)
        if problem is not None:
            raise holder.error(problem, i)
        out.append(PolicyTarget(name, weight))
    return tuple(out)


def _unknown_target(name: str, catalog: Catalog, settings: Settings) -> str | None:
    """Why ``name`` can never resolve (None when it can): checked at start, not at the first request."""
    resolved = settings.aliases.get(name, name)
    if catalog.get(resolved) is not None:
        return None
    vendor, sep, rest = resolved.partition("/")
    if not sep or not rest:
        return f"'{name}' is not a catalog model, an alias or vendor/model"
    if vendor == "simulator":
        if catalog.get(rest) is None:
            return f"the simulator serves catalog models; '{rest}' is not one"
        return None
    if vendor not in settings.vendors:
        return f"'{vendor}' is neither a catalog lab nor a configured vendor"
    return None


def _balance(section: Section) -> Mapping[str, float]:
    sub = section.section("balance")
    sub.only("cost", "latency", "quality")
    values = {k: sub.number(k, 0.0, minimum=0.0) for k in ("cost", "latency", "quality")}
    if not sub.value:
        values = {"cost": 1.0, "latency": 1.0, "quality": 1.0}
    total = sum(values.values())
    if total <= 0:
        raise section.error("at least one of cost, latency, quality needs a positive weight", "balance")
    return MappingProxyType({k: v / total for k, v in values.items()})


def _quality(section: Section, catalog: Catalog) -> tuple[Mapping[str, float], Mapping[str, Mapping[str, float]]]:
    sub = section.section("quality")
    sub.only("weights", "scores")
    scores_sec = sub.section("scores")
    scores: dict[str, Mapping[str, float]] = {}
    for target in scores_sec.names():
        per = scores_sec.section(target)
        scores[target] = MappingProxyType({k: per.number(k, 0.0) for k in per.names()})
    weights_sec = sub.section("weights")
    known = {k for m in catalog for k in m.benchmarks} | {k for s in scores.values() for k in s}
    weights: dict[str, float] = {}
    for name in weights_sec.names():
        if name not in known:
            raise weights_sec.error("not a catalog benchmark nor one of this policy's own scores", name)
        weights[name] = weights_sec.number(name, 0.0, minimum=0.0)
    return MappingProxyType(weights), MappingProxyType(scores)


def _filters(section: Section) -> Filters:
    sub = section.section("filters")
    sub.only(*_FILTER_KEYS)
    caps = frozenset(_string_list(sub, "capabilities"))
    unknown = caps - CAPABILITIES
    if unknown:
        raise sub.error(f"unknown capabilities {sorted(unknown)} (known: {', '.join(sorted(CAPABILITIES))})",
                        "capabilities")
    price = sub.section("max_price")
    price.only(*_PRICE_KEYS)
    return Filters(
        zdr=sub.boolean("zdr", False),
        vendors=frozenset(_string_list(sub, "vendors")),
        exclude_vendors=frozenset(_string_list(sub, "exclude_vendors")),
        capabilities=caps,
        max_price=MaxPrice(
            input=price.number("input", 0.0, minimum=0.0) if price.has("input") else None,
            output=price.number("output", 0.0, minimum=0.0) if price.has("output") else None,
        ),
    )


def _retry(section: Section) -> Retry:
    sub = section.section("retry")
    sub.only(*_RETRY_KEYS)
    base = Retry()
    return Retry(
        attempts=sub.integer("attempts", base.attempts, minimum=1),
        backoff_s=sub.number("backoff_s", base.backoff_s, minimum=0.0),
        max_backoff_s=sub.number("max_backoff_s", base.max_backoff_s, minimum=0.0),
        max_retry_after_s=sub.number("max_retry_after_s", base.max_retry_after_s, minimum=0.0),
    )


def _difficulty(section: Section, catalog: Catalog,
                settings: Settings) -> tuple[tuple[PolicyTarget, ...], DifficultyRule]:
    """A difficulty policy's targets (weak tier, then strong) and its rule; the threshold calibrated if asked."""
    if section.has("targets"):
        raise section.error("a difficulty policy lists its targets under tiers.weak and tiers.strong", "targets")
    tiers = section.section("tiers")
    if not isinstance(tiers.value, dict) or not tiers.value:
        raise section.error("the difficulty strategy needs tiers: {weak: [...], strong: [...]}", "tiers")
    tiers.only("weak", "strong")
    weak = _targets(tiers, catalog, settings, "weak", "the weak tier")
    strong = _targets(tiers, catalog, settings, "strong", "the strong tier")
    both = {t.name for t in weak} & {t.name for t in strong}
    if both:
        raise tiers.error(f"{sorted(both)} in both tiers: a target belongs to one tier", "strong")
    sub = section.section("difficulty")
    sub.only(*_DIFFICULTY_KEYS)
    if sub.has("threshold") == sub.has("strong_share"):
        raise section.error("give exactly one of difficulty.threshold (a score in [0, 1]) or difficulty.strong_share "
                            "(the share of requests to send to the strong tier, calibrated)", "difficulty")
    try:  # at start, not at the first request: the scorer's weights must load
        difficulty.shared_scorer()
    except difficulty.ScorerUnavailable as exc:
        raise section.error(f"the difficulty scorer cannot load: {exc}", "strategy") from None
    share: float | None = None
    if sub.has("threshold"):
        threshold = sub.number("threshold", 0.5, minimum=0.0)
        if threshold > 1.0:
            raise sub.error(f"a score threshold is in [0, 1], got {threshold}", "threshold")
    else:
        share = sub.number("strong_share", 0.3, minimum=0.0)
        if share > 1.0:
            raise sub.error(f"a share is in [0, 1] (0.3 = 30% of requests to the strong tier), got {share}",
                            "strong_share")
        threshold = difficulty.shipped_threshold(share)
    rule = DifficultyRule(
        weak=tuple(t.name for t in weak), strong=tuple(t.name for t in strong), threshold=threshold,
        strong_share=share, tier_strategy=section.choice("tier_strategy", "priority", TIER_STRATEGIES),
        fallback_across_tiers=sub.boolean("fallback_across_tiers", True))
    return (*weak, *strong), rule


def parse_policy(name: str, section: Section, catalog: Catalog, settings: Settings) -> Policy:
    section.only(*_POLICY_KEYS)
    strategy = section.choice("strategy", "priority", STRATEGIES)
    rule: DifficultyRule | None = None
    if strategy == "difficulty":
        targets, rule = _difficulty(section, catalog, settings)
    else:
        for key in ("tiers", "tier_strategy", "difficulty"):
            if section.has(key):
                raise section.error(f"'{key}' belongs to the difficulty strategy (strategy: difficulty)", key)
        targets = _targets(section, catalog, settings)
    ranking = rule.tier_strategy if rule is not None else strategy
    weights, scores = _quality(section, catalog)
    if ranking == "quality" and not weights:
        raise section.error("the quality strategy needs quality.weights (benchmark or eval name -> weight)",
                            "strategy")
    expected = section.integer("expected_output_tokens", 0, minimum=1) if section.has(
        "expected_output_tokens") else None
    return Policy(
        name=name,
        targets=targets,
        strategy=strategy,
        balance=_balance(section),
        quality_weights=weights,
        scores=scores,
        expected_output_tokens=expected,
        retry=_retry(section),
        timeout_s=section.number("timeout_s", 120.0, positive=True),
        filters=_filters(section),
        difficulty=rule,
    )


def load_policies(settings: Settings, catalog: Catalog) -> Mapping[str, Policy]:
    """Validate the ``policies:`` section; raises ConfigError naming file, line and key."""
    section = settings.section("policies")
    policies: dict[str, Policy] = {}
    for name in section.names():
        if not name or "/" in name or ":" in name:
            raise section.error("a policy name may not contain '/' or ':' (it must not look like vendor/model)",
                                name)
        if name in settings.aliases:
            raise section.error(f"'{name}' is also an alias; give the policy another name", name)
        if catalog.get(name) is not None:
            raise section.error(f"'{name}' is a catalog model id", name)
        policies[name] = parse_policy(name, section.section(name), catalog, settings)
    return MappingProxyType(policies)
