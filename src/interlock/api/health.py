"""``GET /healthz`` (the process answers) and ``GET /readyz`` (its dependencies answer)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

from interlock.server.http import Request

if TYPE_CHECKING:
    from interlock.app import Gateway


class Health:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def live(self, req: Request) -> None:
        req.json(200, {"status": "ok"})

    async def ready(self, req: Request) -> None:
        checks: dict[str, str] = {}
        ok = True
        try:
            await asyncio.wait_for(asyncio.to_thread(self.gw.store.ping), 2.0)
            checks["state_store"] = "ok"
        except (sqlite3.Error, TimeoutError) as exc:
            ok = False
            checks["state_store"] = f"unreachable: {exc}"
        # Counters are in-process memory in the embedded deployment: reachable by construction.
        checks["counters"] = "ok (memory)"
        checks["vendors"] = ", ".join(sorted(self.gw.vendors)) or "none live"
        req.json(200 if ok else 503, {"status": "ready" if ok else "not_ready", "checks": checks})
