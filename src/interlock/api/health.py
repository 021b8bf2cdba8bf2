"""``GET /healthz`` (the process answers) and ``GET /readyz`` (its dependencies answer)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from asyncpg import PostgresError
from redis.exceptions import RedisError

from interlock.ledger.store import SQLiteLog
from interlock.server.http import Request

if TYPE_CHECKING:
    from interlock.app import Gateway


class Health:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def live(self, req: Request) -> None:
        req.json(200, {"status": "ok"})

    async def ready(self, req: Request) -> None:
        gw = self.gw
        checks: dict[str, str] = {}
        probes: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("state_store", lambda: asyncio.to_thread(gw.store.ping)),
        ]
        log_store = gw.obs.store
        if not isinstance(log_store, SQLiteLog):  # the SQLite log lives in the state store probed above
            probes.append(("log_store", log_store.ping))
        redis = gw.governance.redis
        if redis is not None:
            probes.append(("counters", redis.ping))
        else:
            # In-process memory in the embedded deployment: reachable by construction.
            checks["counters"] = "ok (memory)"
        ok = True
        for name, probe in probes:
            try:
                await asyncio.wait_for(probe(), 2.0)
                checks[name] = "ok"
            except TimeoutError:
                ok = False
                checks[name] = "unreachable: no answer within 2 s"
            except (sqlite3.Error, PostgresError, RedisError, OSError) as exc:
                ok = False
                checks[name] = f"unreachable: {type(exc).__name__}: {exc}"
        checks["vendors"] = ", ".join(sorted(gw.vendors)) or "none live"
        req.json(200 if ok else 503, {"status": "ready" if ok else "not_ready", "checks": checks})
