"""The ``cache:`` section: the exact response cache, in one place.

.. code-block:: yaml

    cache:
      enabled: false            # the floor: on for every project and policy
      backend: memory           # memory (per worker, bounded by max_bytes) | redis (the redis: section, shared)
      ttl_s: 3600               # how long an answer is kept; x-interlock-cache-ttl may ask for less or more
      max_ttl_s: 86400          # up to this
      max_bytes: 268435456      # memory backend: the whole cache (least recently used answers leave first)
      max_entry_bytes: 1048576  # an answer larger than this is not stored
      allow_request_opt_in: false  # x-interlock-cache: on turns the cache on for one request
      allow_temperature: false  # store answers sampled at temperature > 0 (or the vendor's default)
      hit_cost_fraction: 0      # what a hit costs the caller, as a fraction of what the answer cost
      share_across_projects: false  # one project's answers may serve another's identical requests
      anthropic_auto_breakpoints: false  # place cache_control markers on the stable prefix (Anthropic routes)
      semantic:                 # single-turn prompts: a paraphrase of a stored prompt is a hit (docs/cache.md)
        enabled: false
        threshold: 0.97         # cosine similarity of the user texts' embeddings, at least
        max_entries: 10000      # prompt vectors kept per worker (least recently used buckets lose theirs first)
      policies: {cheap: {enabled: true, allow_temperature: true}}
      projects: {billing: {enabled: true, ttl_s: 600, semantic: {enabled: true, threshold: 0.98}}}

A request's settings are the floor's, then its policy's entry, then its project's (the most specific wins);
``x-interlock-cache: off`` always turns the cache off for a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from interlock.config import Settings
from interlock.configfile import Section
from interlock.guardrails.modelfiles import INSTALL_HINT, missing_libraries

BACKENDS = ("memory", "redis")
#: Keys a policy or a project entry may set.
OVERRIDES = ("enabled", "ttl_s", "allow_temperature", "allow_request_opt_in", "hit_cost_fraction", "semantic")
KEYS = ("backend", "max_ttl_s", "max_bytes", "max_entry_bytes", "share_across_projects",
        "anthropic_auto_breakpoints", "redis_timeout_s", "policies", "projects", *OVERRIDES)
#: The lowest threshold allowed: below it, our measured different questions (another city, number, year) hit.
MIN_THRESHOLD = 0.9


@dataclass(frozen=True, slots=True)
class CacheRules:
    """What decides a request's use of the cache (the floor, or the floor with a policy's and a project's)."""

    enabled: bool = False
    ttl_s: int = 3600
    allow_temperature: bool = False
    allow_request_opt_in: bool = False
    hit_cost_fraction: float = 0.0
    #: The semantic cache (``semantic.enabled``) and its cosine threshold (``semantic.threshold``).
    semantic: bool = False
    semantic_threshold: float = 0.97


@dataclass(frozen=True, slots=True)
class CacheSettings:
    rules: CacheRules = CacheRules()
    backend: str = "memory"
    max_ttl_s: int = 86400
    max_bytes: int = 256 * 1024 * 1024
    max_entry_bytes: int = 1024 * 1024
    share_across_projects: bool = False
    anthropic_auto_breakpoints: bool = False
    #: Redis: a lookup or store that takes longer than this counts as a miss (never an error).
    redis_timeout_s: float = 0.25
    #: Prompt vectors the semantic index keeps per worker.
    semantic_max_entries: int = 10000
    policies: dict[str, dict[str, object]] = field(default_factory=dict)
    projects: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def semantic_possible(self) -> bool:
        """Whether any request can use the semantic cache (else no encoder is loaded)."""
        overrides = (*self.policies.values(), *self.projects.values())
        return self.possible and (self.rules.semantic or any(o.get("semantic") for o in overrides))

    @property
    def possible(self) -> bool:
        """Whether any request can use the cache (else the stage is left out of the pipeline)."""
        overrides = (*self.policies.values(), *self.projects.values())
        return (self.rules.enabled or self.rules.allow_request_opt_in
                or any(o.get("enabled") or o.get("allow_request_opt_in") for o in overrides))

    def rules_for(self, policy: str | None, project: str | None) -> CacheRules:
        rules = self.rules
        for entry in (self.policies.get(policy) if policy else None,
                      self.projects.get(project) if project else None):
            if entry:
                rules = replace(rules, **entry)  # type: ignore[arg-type]
        return rules

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheSettings:
        section = settings.section("cache")
        section.only(*KEYS)
        backend = section.choice("backend", "memory", BACKENDS)
        if backend == "redis" and not _has_redis(settings):
            raise section.error("backend: redis needs a redis: section (the server the cache lives in)", "backend")
        max_ttl = section.integer("max_ttl_s", 86400, minimum=1)
        rules = CacheRules(**_overrides(section, max_ttl, every=True))  # type: ignore[arg-type]
        max_entries = 10000
        if section.raw("semantic") is not None:
            max_entries = section.section("semantic").integer("max_entries", 10000, minimum=1)
        named: dict[str, dict[str, dict[str, object]]] = {}
        for kind in ("policies", "projects"):
            group = section.section(kind)
            named[kind] = {}
            for name in group.names():
                entry = group.section(name)
                entry.only(*OVERRIDES)
                named[kind][name] = _overrides(entry, max_ttl, every=False)
        return cls(
            rules=rules,
            backend=backend,
            max_ttl_s=max_ttl,
            max_bytes=section.integer("max_bytes", 256 * 1024 * 1024, minimum=1024),
            max_entry_bytes=section.integer("max_entry_bytes", 1024 * 1024, minimum=256),
            share_across_projects=section.boolean("share_across_projects", False),
            anthropic_auto_breakpoints=section.boolean("anthropic_auto_breakpoints", False),
            redis_timeout_s=section.number("redis_timeout_s", 0.25, positive=True),
            semantic_max_entries=max_entries,
            policies=named["policies"],
            projects=named["projects"],
        )


def _overrides(section: Section, max_ttl: int, *, every: bool) -> dict[str, object]:
    """The rule keys ``section`` sets (all of them, with defaults, when ``every``)."""
    base = CacheRules()
    out: dict[str, object] = {}
    for key in OVERRIDES:
        if not every and not section.has(key):
            continue
        if key == "ttl_s":
            ttl = section.integer(key, base.ttl_s, minimum=1)
            if ttl > max_ttl:
                raise section.error(f"{ttl} is more than max_ttl_s ({max_ttl})", key)
            out[key] = ttl
        elif key == "hit_cost_fraction":
            fraction = section.number(key, base.hit_cost_fraction, minimum=0.0)
            if fraction > 1.0:
                raise section.error("a fraction of the answer's cost: between 0 and 1", key)
            out[key] = fraction
        elif key == "semantic":
            out.update(_semantic(section, every=every))
        else:
            out[key] = section.boolean(key, getattr(base, key))
    return out


def _semantic(parent: Section, *, every: bool) -> dict[str, object]:
    """``semantic: {enabled, threshold}`` as the rule keys ``semantic`` and ``semantic_threshold`` (and
    ``max_entries`` at the top level only: the index is one per worker)."""
    base = CacheRules()
    if parent.raw("semantic") is None:
        return {"semantic": base.semantic, "semantic_threshold": base.semantic_threshold} if every else {}
    sec = parent.section("semantic")
    sec.only("enabled", "threshold", *(("max_entries",) if every else ()))
    out: dict[str, object] = {}
    if every or sec.has("enabled"):
        out["semantic"] = sec.boolean("enabled", base.semantic)
    if every or sec.has("threshold"):
        threshold = sec.number("threshold", base.semantic_threshold, positive=True)
        if not MIN_THRESHOLD <= threshold <= 1.0:
            raise sec.error(f"a cosine similarity from {MIN_THRESHOLD} to 1, got {threshold:g} (below "
                            f"{MIN_THRESHOLD}, questions about another name or number hit)", "threshold")
        out["semantic_threshold"] = threshold
    if out.get("semantic") and (missing := missing_libraries()):
        raise sec.error(f"the semantic cache embeds prompts with the guardrails classifier's model and needs "
                        f"{', '.join(missing)}: {INSTALL_HINT}", "enabled")
    return out


def _has_redis(settings: Settings) -> bool:
    doc = settings.document
    return doc is not None and isinstance(doc.data, dict) and doc.data.get("redis") is not None

