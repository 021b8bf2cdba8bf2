"""Builds the request log, metrics and tracing of one worker, and their lifecycle.

The Gateway builds an :class:`Observability`, asks it for the sink settle calls,
serves its store and registry on its own routes (``app.py``), starts it when the
event loop starts and drains it at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from interlock.config import Settings
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.ledger.settings import LogSettings
from interlock.ledger.sink import RequestSink
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.writer import LedgerWriter, LogStore, SpillFile
from interlock.observability import zdr_log
from interlock.observability.metrics import Registry, SnapshotDir
from interlock.observability.requests import RequestMetrics
from interlock.observability.settings import TelemetrySettings
from interlock.observability.tracing import Tracer

log = logging.getLogger("interlock.ledger")

SNAPSHOT_INTERVAL = 1.0


def open_log_store(settings: LogSettings, sqlite: SQLiteStore) -> LogStore:
    if settings.store_url:
        # Imported here: asyncpg only for a PostgreSQL log.
        from interlock.ledger.pgstore import PostgresLog

        return PostgresLog(settings.store_url)
    return SQLiteLog(sqlite)


class Observability:
    def __init__(self, settings: Settings, sqlite: SQLiteStore, clock: Clock = SYSTEM_CLOCK) -> None:
        self.log_settings = LogSettings.from_settings(settings)
        zdr_log.install(self.log_settings.zero_data_retention)  # tracebacks under ZDR withhold exception texts
        self.telemetry = TelemetrySettings.from_settings(settings)
        self.registry = Registry()
        self.metrics = RequestMetrics(self.registry) if self.telemetry.metrics else None
        #: Requests the native HTTP server refused before the app saw them (server/h1.py).
        self.refusals = self.registry.counter(
            "interlock_http_refusals_total", "Requests the HTTP server refused before the app saw them "
            "(malformed framing, limits, timeouts), by status and reason.", ("status", "reason"))
        self.store = open_log_store(self.log_settings, sqlite)
        self.snapshots = (SnapshotDir(settings.server.state_dir / "metrics")
                          if self.telemetry.metrics and settings.server.workers > 1 else None)
        self.tracer: Tracer | None = None
        if self.telemetry.otlp_endpoint:
            # Imported here: only when OTLP export is configured.
            from interlock.observability.tracing import Tracer

            self.tracer = Tracer(self.telemetry)
        self.writer: LedgerWriter | None = None
        self.sink = RequestSink(self.log_settings, None, self.metrics, self.tracer)
        if self.log_settings.enabled:
            ls = self.log_settings
            self.writer = LedgerWriter(self.store, SpillFile(ls.spill_dir), interval=ls.flush_interval,
                                       batch=ls.batch_size,
                                       retention_s=ls.retention_days * 86400.0 if ls.retention_days else None,
                                       clock=clock)
            self.sink.writer = self.writer
            if self.metrics is not None:
                self.metrics.watch_ledger(self.writer)
        self._tasks: list[asyncio.Task[None]] = []

    def count_refusal(self, status: int, reason: str) -> None:
        self.refusals.inc((str(status), reason))

    @staticmethod
    def validate(settings: Settings) -> None:
        LogSettings.from_settings(settings)
        TelemetrySettings.from_settings(settings)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer at once (it replays records a previous run spilled) and the metric snapshots."""
        if self.writer is not None:
            loop.call_soon(self.writer.start)
        if self.snapshots is not None:
            self._tasks.append(loop.create_task(self._snapshot_loop(self.snapshots)))

    async def _snapshot_loop(self, snapshots: SnapshotDir) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_INTERVAL)
            try:
                await asyncio.to_thread(snapshots.write, self.registry)
            except OSError as exc:
                log.warning("writing the metrics snapshot failed: %s", exc)

    async def stop(self) -> None:
        """Graceful shutdown: every pending record is written or spilled; spans are flushed."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.writer is not None:
            await self.writer.drain()
        else:
            await self.store.close()
        if self.tracer is not None:
            await self.tracer.drain()
