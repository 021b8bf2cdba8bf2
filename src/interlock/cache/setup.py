"""Builds the response cache from the settings (the composition root calls :func:`build_cache`)."""

from __future__ import annotations

from interlock.cache.response_cache import ResponseCache
from interlock.cache.settings import CacheSettings
from interlock.cache.store import Backend, Journal, MemoryBackend, RedisBackend
from interlock.config import Settings
from interlock.core.clock import Clock
from interlock.observability.metrics import Registry
from interlock.state.redis import redis_settings


def build_cache(cache: CacheSettings, settings: Settings, clock: Clock, registry: Registry) -> ResponseCache | None:
    """The cache, or None when no request can use it (then the stage only places breakpoints, if asked)."""
    if not cache.possible:
        return None
    backend: Backend
    if cache.backend == "redis":
        redis = redis_settings(settings)
        assert redis is not None  # CacheSettings checked that the section is there
        # Imported here: Redis is used only when a section asks for it.
        import redis.asyncio as aioredis

        client = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            redis.url, max_connections=64, timeout=cache.redis_timeout_s))
        backend = RedisBackend(client, redis.key_prefix, cache.redis_timeout_s, clock.monotonic)
    else:
        journal = Journal(settings.server.state_dir / "cache-deletions.jsonl")
        backend = MemoryBackend(cache.max_bytes, clock.monotonic, clock.time, journal)
    results = registry.counter("interlock_cache_requests_total",
                               "Requests the response cache looked at, by result (hit, miss, bypass).", ("result",))
    out = ResponseCache(cache, backend, clock.time, lambda status: results.inc((status,)))
    registry.collector(out.collect)
    return out
