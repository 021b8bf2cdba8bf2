"""Building the routing engine from settings, and validating its config at start.

``policies:``, ``redis:``, ``circuit_breaker:`` and ``routing:`` are read here through
``Settings.section`` so a mistake fails ``interlock serve`` with the file,
line and key, in the launching process, before any worker starts.

``redis:`` is read by :mod:`interlock.state.redis`.
"""

from __future__ import annotations

from collections.abc import Mapping

from interlock.catalog import Catalog
from interlock.config import Settings
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.vendor import VendorRuntime
from interlock.routing.affinity import AffinitySettings, PrefixAffinity
from interlock.routing.circuit import BreakerSettings, Circuits
from interlock.routing.engine import RoutingEngine
from interlock.routing.planner import Planner
from interlock.routing.policies import load_policies
from interlock.routing.shared import SharedStats
from interlock.routing.stats import LiveStats
from interlock.state.redis import redis_settings

#: ``circuit_breaker:`` keys (every target's breaker, per process).
BREAKER_KEYS = ("failure_rate", "min_requests", "window_s", "cooldown_s", "max_cooldown_s")


def breaker_settings(settings: Settings) -> BreakerSettings:
    """``circuit_breaker:`` - when a target's breaker opens and how long it stays open."""
    section = settings.section("circuit_breaker")
    section.only(*BREAKER_KEYS)
    default = BreakerSettings()
    rate = section.number("failure_rate", default.failure_rate, positive=True)
    if rate > 1.0:
        raise section.error(f"expected a share of attempts between 0 and 1, got {rate:g}", "failure_rate")
    cooldown = section.number("cooldown_s", default.cooldown_s, positive=True)
    longest = section.number("max_cooldown_s", max(default.max_cooldown_s, cooldown), positive=True)
    if longest < cooldown:
        raise section.error(f"expected at least cooldown_s ({cooldown:g}), got {longest:g}", "max_cooldown_s")
    return BreakerSettings(
        failure_rate=rate,
        min_requests=section.integer("min_requests", default.min_requests, minimum=1),
        window_s=section.number("window_s", default.window_s, positive=True),
        cooldown_s=cooldown,
        max_cooldown_s=longest,
    )


#: ``routing.prefix_affinity`` keys.
AFFINITY_KEYS = ("enabled", "ttl_s", "vendor_ttl_s", "min_prefix_tokens", "max_entries")


def affinity_settings(settings: Settings) -> AffinitySettings:
    """``routing: {prefix_affinity: ...}`` - on by default: it only reorders routes that are allowed anyway."""
    section = settings.section("routing")
    section.only("prefix_affinity")
    sub = section.section("prefix_affinity")
    sub.only(*AFFINITY_KEYS)
    default = AffinitySettings()
    per_vendor = sub.section("vendor_ttl_s")
    vendor_ttl = {vid: per_vendor.number(vid, default.ttl_s, positive=True) for vid in per_vendor.names()}
    return AffinitySettings(
        enabled=sub.boolean("enabled", default.enabled),
        ttl_s=sub.number("ttl_s", default.ttl_s, positive=True),
        vendor_ttl_s=vendor_ttl,
        min_prefix_tokens=sub.integer("min_prefix_tokens", default.min_prefix_tokens, minimum=1),
        max_entries=sub.integer("max_entries", default.max_entries, minimum=1),
    )


def validate_routing(settings: Settings, catalog: Catalog) -> None:
    load_policies(settings, catalog)
    redis_settings(settings)
    breaker_settings(settings)
    affinity_settings(settings)


def build_routing(settings: Settings, catalog: Catalog, vendors: Mapping[str, VendorRuntime],
                  clock: Clock = SYSTEM_CLOCK) -> RoutingEngine:
    policies = load_policies(settings, catalog)
    planner = Planner(catalog, vendors, settings.vendors, settings.aliases, policies)
    affinity = affinity_settings(settings)
    engine = RoutingEngine(planner, circuits=Circuits(breaker_settings(settings), clock=clock.monotonic),
                           stats=LiveStats(clock=clock.time),
                           affinity=PrefixAffinity(affinity, clock.monotonic) if affinity.enabled else None)
    engine.regions = settings.regions
    redis = redis_settings(settings)
    if redis is not None:
        engine.shared = SharedStats(engine.stats, redis.url, prefix=f"{redis.key_prefix}routing:",
                                    interval=redis.sync_interval_s)
    return engine


def reloaded_planner(settings: Settings, catalog: Catalog, vendors: Mapping[str, VendorRuntime]) -> Planner:
    """A planner for ``settings``' vendors, aliases and policies (validated: raises ``ConfigError``), to hand
    to :meth:`Planner.replace` of the running one."""
    return Planner(catalog, vendors, settings.vendors, settings.aliases, load_policies(settings, catalog))
