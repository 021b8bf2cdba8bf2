"""``GET /metrics``: the Prometheus text exposition of this gateway (every worker merged).

Unauthenticated, like most scrape targets: it exposes counts per vendor and
model, never keys, projects, users or content. Turn it off with
``telemetry.metrics: false``.
"""

from __future__ import annotations

import asyncio

from interlock.core.exchange import Exchange
from interlock.observability.metrics import Registry, SnapshotDir

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsApi:
    def __init__(self, registry: Registry, snapshots: SnapshotDir | None) -> None:
        self.registry = registry
        self.snapshots = snapshots

    async def scrape(self, req: Exchange) -> None:
        others = await asyncio.to_thread(self.snapshots.others) if self.snapshots is not None else []
        req.send(200, self.registry.render(others).encode(), [("content-type", CONTENT_TYPE)])
