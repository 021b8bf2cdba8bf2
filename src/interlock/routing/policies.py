"""Routing policies: the ``policies:`` section of ``interlock.yaml``.

A policy is a named, reusable routing decision that callers reach as a model
alias (``model: "support-bot"``)::

    policies:
      support-bot:
        targets:                          # ordered; catalog ids, vendor/model or aliases
          - openai/gpt-4.1-mini
          - {model: anthropic/claude-haiku-4-5, weight: 2}
        strategy: cost                    # priority | weighted | cost | latency | throughput | quality | balanced
        balance: {cost: 0.5, latency: 0.3, quality: 0.2}
        quality:
          weights: {"Aider Polyglot": 1, support_eval: 2}
          scores: {openai/gpt-4.1-mini: {support_eval: 0.81}}
        expected_output_tokens: 400
        retry: {attempts: 2, backoff_s: 0.2, max_backoff_s: 2, max_retry_after_s: 5}
        timeout_s: 60                     # total deadline across every attempt
        filters: {zdr: true, vendors: [openai, anthropic], exclude_vendors: [openrouter],
                  capabilities: [tools], max_price: {input: 1.0, output: 4.0}}

Validation goes through :class:`~interlock.configfile.Section`, so a mistake
fails the start with the file, line and key, not at the first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from interlock.catalog import CAPABILITIES, Catalog
from interlock.config import Settings
from interlock.configfile import Section
from interlock.core.policy import Filters, MaxPrice, Policy, PolicyTarget, Retry

STRATEGIES = ("priority", "weighted", "cost", "latency", "throughput", "quality", "balanced")
_POLICY_KEYS = ("targets", "strategy", "balance", "quality", "expected_output_tokens", "retry", "timeout_s",
                "filters", "description")
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


def _targets(section: Section, catalog: Catalog, settings: Settings) -> tuple[PolicyTarget, ...]:
    raw = section.raw("targets")
    if not isinstance(raw, list) or not raw:
        raise section.error("a policy needs a non-empty list of targets", "targets")
    holder = Section(section.doc, (*section.path, "targets"), {}, section.environ)
    out: list[PolicyTarget] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            name, weight = item.strip(), 1.0
        elif isinstance(item, dict):
            sub = Section(section.doc, (*section.path, "targets", i), item, section.environ)
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


def parse_policy(name: str, section: Section, catalog: Catalog, settings: Settings) -> Policy:
    section.only(*_POLICY_KEYS)
    strategy = section.choice("strategy", "priority", STRATEGIES)
    weights, scores = _quality(section, catalog)
    if strategy == "quality" and not weights:
        raise section.error("the quality strategy needs quality.weights (benchmark or eval name -> weight)",
                            "strategy")
    expected = section.integer("expected_output_tokens", 0, minimum=1) if section.has(
        "expected_output_tokens") else None
    return Policy(
        name=name,
        targets=_targets(section, catalog, settings),
        strategy=strategy,
        balance=_balance(section),
        quality_weights=weights,
        scores=scores,
        expected_output_tokens=expected,
        retry=_retry(section),
        timeout_s=section.number("timeout_s", 120.0, positive=True),
        filters=_filters(section),
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
