"""Builds the response cache from the settings (the composition root calls :func:`build_cache`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.cache.response_cache import ResponseCache
from interlock.cache.settings import CacheSettings
from interlock.cache.store import Backend, Journal, MemoryBackend, RedisBackend
from interlock.config import Settings
from interlock.core.clock import Clock
from interlock.observability.metrics import Registry
from interlock.state.redis import redis_settings

if TYPE_CHECKING:  # numpy is optional (the classifier extra): semantic.py is imported only when it is on
    from interlock.cache.semantic import Offload, SemanticCache


def build_cache(cache: CacheSettings, settings: Settings, clock: Clock, registry: Registry,
                offload: Offload | None = None) -> ResponseCache | None:
    """The cache, or None when no request can use it (then the stage only places breakpoints, if asked).
    ``offload`` runs the semantic cache's embeddings off the event loop (the guardrails' threads)."""
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
    semantic = build_semantic(cache, clock, offload) if cache.semantic_possible else None
    out = ResponseCache(cache, backend, clock.time, lambda status: results.inc((status,)), semantic)
    registry.collector(out.collect)
    return out


def build_semantic(cache: CacheSettings, clock: Clock, offload: Offload | None) -> SemanticCache:
    """The semantic index with the shared encoder, loaded now (a missing or broken model fails the start:
    ``guardrails.modelfiles.ModelUnavailable`` names the package to install)."""
    # Imported here: numpy, tokenizers and the model package are optional (the classifier extra).
    from interlock.cache.semantic import SemanticCache, SemanticIndex
    from interlock.guardrails.encoder import shared_encoder
    from interlock.guardrails.modelfiles import model_dir

    if offload is None:
        raise ValueError("the semantic cache needs an offload (pipeline.guard.off_loop)")
    encoder = shared_encoder(model_dir())
    index = SemanticIndex(cache.semantic_max_entries, clock.monotonic, encoder.hidden)
    return SemanticCache(encoder.embed, offload, index)
