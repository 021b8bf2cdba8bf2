"""Batched, non-blocking writes of request records.

``submit`` appends to a list (no await, no I/O); a background task flushes the
list every ``interval`` seconds, or sooner once ``batch`` records wait, in a
worker thread so SQLite never blocks the event loop. ``close`` drains what is
left, so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from interlock.ledger.store import SQLiteStore

log = logging.getLogger("interlock.ledger")


class LedgerWriter:
    def __init__(self, store: SQLiteStore, *, interval: float = 1.0, batch: int = 512) -> None:
        self._store = store
        self._interval = interval
        self._batch = batch
        self._pending: list[Mapping[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def submit(self, record: Mapping[str, Any]) -> None:
        self._pending.append(record)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        if len(self._pending) >= self._batch:
            self._wake.set()

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self._store.insert_requests, batch)
        except Exception:
            # Keep the records for the next flush rather than lose them.
            log.exception("writing %d request records failed; will retry", len(batch))
            self._pending[:0] = batch

    def close(self) -> None:
        """Synchronous drain for shutdown hooks that run outside the loop."""
        self._closed = True
        if self._pending:
            batch, self._pending = self._pending, []
            self._store.insert_requests(batch)


class NullLedger:
    """Logging disabled: records are dropped by configuration."""

    def submit(self, record: Mapping[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None
