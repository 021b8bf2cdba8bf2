"""The tool-call log (``mcp_calls``): one record per call, written in batches, read by the admin API.

``submit`` appends to a list (on the call's path: no I/O); a task flushes every second, or sooner past
``BATCH`` records, in one transaction. A failed flush keeps the batch for the next try (bounded: past
``MAX_PENDING`` the oldest records are dropped and counted in the log). Records older than the request
log's retention are deleted at most once an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import astuple
from typing import Any

import orjson

from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.governance.store import GovStore
from interlock.mcp.model import ToolCall

log = logging.getLogger("interlock.mcp")

COLUMNS = ("id", "at", "project", "key_id", "pack", "user_id", "server", "tool", "name", "duration_ms", "status",
           "error", "args_bytes", "result_bytes", "arguments", "result", "guardrails")
BATCH = 256
MAX_PENDING = 10_000
PURGE_EVERY_S = 3600.0
#: What the admin API filters on (query parameter → column).
FILTERS = {"tool_pack": "pack", "registered_user": "user_id", "server": "server", "tool": "tool", "status": "status",
           "key": "key_id"}


class McpCallLog:
    def __init__(self, gov: GovStore, *, retention_days: float | None, clock: Clock = SYSTEM_CLOCK,
                 enabled: bool = True) -> None:
        self.gov = gov
        self.retention_days = retention_days
        self.clock = clock
        self.enabled = enabled
        self._pending: list[ToolCall] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._purged = 0.0
        self.dropped = 0

    def submit(self, call: ToolCall) -> None:
        if not self.enabled:
            return
        self._pending.append(call)
        if len(self._pending) >= BATCH:
            self._wake.set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.enabled:
            self._task = loop.create_task(self._run(), name="mcp-call-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await self._purge()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        sql = f"INSERT INTO mcp_calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
        try:
            await self.gov.transaction([(sql, _row(c)) for c in batch])
        except Exception as exc:  # noqa: BLE001 - the store is down: keep the batch for the next flush
            log.warning("MCP call log: writing %d records failed (%s); retrying", len(batch), exc)
            self._pending = batch + self._pending
            excess = len(self._pending) - MAX_PENDING
            if excess > 0:
                self.dropped += excess
                del self._pending[:excess]
                log.error("MCP call log: dropped %d records (the store has been down too long)", excess)

    async def _purge(self) -> None:
        if not self.retention_days:
            return
        now = self.clock.time()
        if now - self._purged < PURGE_EVERY_S:
            return
        self._purged = now
        try:
            await self.gov.transaction([("DELETE FROM mcp_calls WHERE at < ?",
                                         (now - self.retention_days * 86400.0,))])
        except Exception as exc:  # noqa: BLE001 - retried at the next purge
            log.warning("MCP call log: purging old records failed: %s", exc)

    async def calls(self, project: str | None, filters: dict[str, str], limit: int,
                    before: float | None) -> list[dict[str, Any]]:
        """Newest first; ``project`` None: every project (the admin key)."""
        await self.flush()  # what this worker holds is visible at once
        where: list[str] = []
        args: list[Any] = []
        if project is not None:
            where.append("project = ?")
            args.append(project)
        for param, value in filters.items():
            where.append(f"{FILTERS[param]} = ?")
            args.append(value)
        if before is not None:
            where.append("at < ?")
            args.append(before)
        sql = (f"SELECT {', '.join(COLUMNS)} FROM mcp_calls {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY at DESC LIMIT {int(limit)}")
        out = []
        for row in await self.gov.fetch(sql, tuple(args)):
            item = dict(zip(COLUMNS, row, strict=True))
            item["user"] = item.pop("user_id")
            if item["guardrails"]:
                item["guardrails"] = orjson.loads(item["guardrails"])
            out.append(item)
        return out


async def summary(gov: GovStore, project: str | None, since: float) -> list[dict[str, Any]]:
    """Calls since ``since`` per (pack, server, tool): total, errors (anything but ok), blocked, mean duration."""
    where, args = ("WHERE project = ? AND at >= ?", (project, since)) if project is not None else \
        ("WHERE at >= ?", (since,))
    rows = await gov.fetch("SELECT pack, server, tool, COUNT(*), SUM(CASE WHEN status = 'ok' THEN 0 ELSE 1 END), "
                           "SUM(CASE WHEN status = 'blocked' THEN 1 ELSE 0 END), AVG(duration_ms) FROM mcp_calls "
                           f"{where} GROUP BY pack, server, tool ORDER BY COUNT(*) DESC LIMIT 500", args)
    return [{"pack": r[0], "server": r[1], "tool": r[2], "calls": int(r[3]), "errors": int(r[4] or 0),
             "blocked": int(r[5] or 0), "mean_ms": float(r[6] or 0.0)} for r in rows]


async def hourly(gov: GovStore, project: str | None, since: float, hours: int
                 ) -> dict[tuple[str, str, str], tuple[list[int], list[int]]]:
    """Calls and errors since ``since`` per (pack, server, tool) in each UTC hour, the one holding ``since``
    first (``hours`` of them): the same calls as :func:`summary` counts."""
    first_hour = int(since // 3600)
    bucket = "CAST(floor(at / 3600) AS bigint)" if gov.kind == "postgresql" else "CAST(at / 3600 AS INTEGER)"
    where, args = ("WHERE project = ? AND at >= ?", (project, since)) if project is not None else \
        ("WHERE at >= ?", (since,))
    rows = await gov.fetch(f"SELECT pack, server, tool, {bucket} AS hour, COUNT(*), "
                           "SUM(CASE WHEN status = 'ok' THEN 0 ELSE 1 END) FROM mcp_calls "
                           f"{where} GROUP BY pack, server, tool, hour", args)
    out: dict[tuple[str, str, str], tuple[list[int], list[int]]] = {}
    for pack, server, tool, hour, calls, errors in rows:
        i = int(hour) - first_hour
        if 0 <= i < hours:
            counts, failed = out.setdefault((pack, server, tool), ([0] * hours, [0] * hours))
            counts[i] += int(calls)
            failed[i] += int(errors or 0)
    return out


def _row(call: ToolCall) -> tuple[Any, ...]:
    values = list(astuple(call))
    values[-1] = orjson.dumps(call.guardrails).decode() if call.guardrails else None
    return tuple(values)

