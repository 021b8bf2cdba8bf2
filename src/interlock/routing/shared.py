"""Sharing live statistics between replicas through Redis.

Each replica records locally (the hot path never waits on the network) and a
background task, once per ``interval``, pushes the counters recorded since the
last push (``HINCRBY`` - buckets are plain counters, so replicas add up) and
pulls every target's merged buckets back. Reads then use the merged view, so
the latency strategy of one replica knows what the others measured, at most
one interval late. A Redis outage only freezes the shared view: counters are
kept and pushed when Redis is back.

Layout: a set ``{prefix}targets`` of target keys, and per target and ring a
hash ``{prefix}t:{target}:{ring}`` whose fields are ``{bucket}:{counter}``.
Fields older than the ring are deleted on pull; keys expire a day after the
last write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from interlock.routing.stats import COARSE_LEN, COARSE_S, FINE_LEN, FINE_S, WIDTH, LiveStats, TargetSeries

log = logging.getLogger("interlock.routing")
_TTL_S = COARSE_S * COARSE_LEN + 3600


class SharedStats:
    def __init__(self, stats: LiveStats, url: str, *, prefix: str = "interlock:stats:", interval: float = 1.0,
                 client: Any = None) -> None:
        # Imported here: only when live statistics are shared through Redis.
        import redis.asyncio as aioredis

        self.stats = stats
        self.prefix = prefix
        self.interval = interval
        self.client: Any = client if client is not None else aioredis.Redis.from_url(url)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        stats.pending = {}

    def _hash(self, key: str, ring: str) -> str:
        return f"{self.prefix}t:{key}:{ring}"

    def start(self) -> None:
        """Start the sync loop on the running event loop (idempotent)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._closed:
            try:
                await self.sync_once()
            except Exception:
                log.warning("sharing routing statistics through Redis failed; will retry", exc_info=True)
            await asyncio.sleep(self.interval)

    async def push(self) -> None:
        pending = self.stats.pending
        if not pending:
            return
        self.stats.pending = {}
        try:
            pipe = self.client.pipeline(transaction=False)
            targets = set()
            for (key, ring, bucket), counters in pending.items():
                name = self._hash(key, ring)
                targets.add(key)
                for i, value in enumerate(counters):
                    if value:
                        pipe.hincrby(name, f"{bucket}:{i}", value)
                pipe.expire(name, _TTL_S)
            pipe.sadd(f"{self.prefix}targets", *targets)
            pipe.expire(f"{self.prefix}targets", _TTL_S)
            await pipe.execute()
        except BaseException:
            # Keep what was not pushed: merge it back in front of anything recorded meanwhile.
            current = self.stats.pending or {}
            for slot, counters in pending.items():
                into = current.setdefault(slot, [0] * WIDTH)
                for i, value in enumerate(counters):
                    into[i] += value
            self.stats.pending = current
            raise

    async def pull(self, now: float) -> None:
        raw_targets = await self.client.smembers(f"{self.prefix}targets")
        keys = sorted(t.decode() if isinstance(t, bytes) else str(t) for t in raw_targets)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._hash(key, "f"))
            pipe.hgetall(self._hash(key, "c"))
        results = await pipe.execute()
        shared: dict[str, TargetSeries] = {}
        stale = self.client.pipeline(transaction=False)
        has_stale = False
        oldest = {"f": int(now // FINE_S) - FINE_LEN, "c": int(now // COARSE_S) - COARSE_LEN}
        for n, key in enumerate(keys):
            series = TargetSeries()
            for ring, fields in (("f", results[2 * n]), ("c", results[2 * n + 1])):
                target = series.fine if ring == "f" else series.coarse
                old: list[Any] = []
                for field, value in fields.items():
                    text = field.decode() if isinstance(field, bytes) else str(field)
                    bucket_s, _, idx_s = text.partition(":")
                    bucket, idx = int(bucket_s), int(idx_s)
                    if bucket <= oldest[ring]:
                        old.append(field)
                        continue
                    row = target.get(bucket)
                    if row is None:
                        row = target[bucket] = [0] * WIDTH
                    if 0 <= idx < WIDTH:
                        row[idx] += int(value)
                if old:
                    stale.hdel(self._hash(key, ring), *old)
                    has_stale = True
            shared[key] = series
        if has_stale:
            await stale.execute()
        self.stats.shared = shared
        self.stats.invalidate()

    async def sync_once(self) -> None:
        await self.push()
        await self.pull(self.stats.clock())

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.push()
        except Exception:
            log.warning("the last push of routing statistics to Redis failed", exc_info=True)
        await self.client.aclose()
