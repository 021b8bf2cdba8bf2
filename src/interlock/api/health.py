"""``GET /healthz`` (the process answers) and ``GET /readyz`` (its dependencies answer)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable

from asyncpg import PostgresError
from redis.exceptions import RedisError

from interlock.core.exchange import Exchange


class Health:
    """``probes`` name each dependency with an async check that raises when it does not answer."""

    def __init__(self, probes: list[tuple[str, Callable[[], Awaitable[None]]]], counters_in_memory: bool,
                 vendors: Iterable[str]) -> None:
        self.probes = probes
        self.counters_in_memory = counters_in_memory
        #: Set when the process is stopping (SIGTERM with ``server.drain_s``): not ready, so the load
        #: balancer stops sending before this replica stops accepting.
        self.draining = False
        self.vendors = ", ".join(sorted(vendors)) or "none live"

    async def live(self, req: Exchange) -> None:
        req.json(200, {"status": "ok"})

    async def ready(self, req: Exchange) -> None:
        if self.draining:
            req.json(503, {"status": "draining", "checks": {}})
            return
        checks: dict[str, str] = {}
        if self.counters_in_memory:
            # In-process memory in the embedded deployment: reachable by construction.
            checks["counters"] = "ok (memory)"
        ok = True
        for name, probe in self.probes:
            try:
                await asyncio.wait_for(probe(), 2.0)
                checks[name] = "ok"
            except TimeoutError:
                ok = False
                checks[name] = "unreachable: no answer within 2 s"
            except (sqlite3.Error, PostgresError, RedisError, OSError) as exc:
                ok = False
                checks[name] = f"unreachable: {type(exc).__name__}: {exc}"
        checks["vendors"] = self.vendors
        req.json(200 if ok else 503, {"status": "ready" if ok else "not_ready", "checks": checks})
