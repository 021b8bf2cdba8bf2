"""Batched, non-blocking writes of request records, with a spill file when the store is down.

``submit`` appends a row (``record.build_row``) to a list (no await, no I/O);
the writer never looks inside a row, it hands whole batches to the store. A
background task flushes the list every ``interval`` seconds (≤ 1 s), or sooner
once ``batch`` records wait.
When a write fails or takes longer than ``write_timeout``, the batch goes to an
append-only spill file in the state directory (``ledger-spill/<pid>.jsonl``) and
the store is marked down; while it is down every batch goes straight to the
file (no waiting on timeouts), and the store is probed with backoff. Once it
answers, the spilled records are replayed (writes are idempotent by request
id, so a batch that was committed just before a failure is not counted twice).

Durability: records reach the spill file with a plain ``write`` (the page cache
survives the process being killed), so a hard kill loses at most the records
still in memory - at most one flush interval. ``drain`` (graceful shutdown)
writes or spills everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.process import pid_alive
from interlock.ledger.rowcodec import Row, as_rows, from_spill, spill_line
from interlock.ledger.schema import LogQuery, SpendQuery
from interlock.ledger.usage import Read

log = logging.getLogger("interlock.ledger")

_REPLAY_CHUNK = 2000


class LogStore(Protocol):
    kind: str

    async def write(self, records: Sequence[Row | Mapping[str, Any]]) -> int: ...
    async def query(self, q: LogQuery) -> list[dict[str, Any]]: ...
    async def get(self, rid: str) -> dict[str, Any] | None: ...
    async def last_used(self, key_ids: Sequence[str]) -> dict[str, float]: ...
    async def spend(self, q: SpendQuery) -> list[dict[str, Any]]: ...
    async def route_hours(self, model: str, since_hour: int) -> list[tuple[Any, ...]]: ...
    async def read_rollup(self, read: Read) -> list[tuple[Any, ...]]: ...
    async def purge(self, before: float) -> int: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Collect an abandoned write's outcome (it was already counted as failed and spilled)."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("an abandoned request log write ended with %r", task.exception())


class SpillFile:
    """This process's append-only overflow file, and the replay of every process's leftovers."""

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.dir = directory
        self.pid = os.getpid() if pid is None else pid
        self.path = directory / f"{self.pid}.jsonl"
        self._seq = 0

    def append(self, records: Sequence[Row | Mapping[str, Any]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = b"".join(spill_line(r) + b"\n" for r in as_rows(records))
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                # The write on its own line: compiled (make fast), a memoryview slice evaluates its bounds twice.
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)

    def claim(self) -> list[Path]:
        """Files to replay: this process's own, and those left by processes that are gone.

        Each is renamed first (atomic), so two workers never replay the same file and
        this process's new spills start a fresh file.
        """
        if not self.dir.is_dir():
            return []
        claimed: list[Path] = []
        for path in sorted(self.dir.iterdir()):
            name = path.name
            if not name.endswith(".jsonl"):
                continue
            owner = name.split(".", 1)[0].split("-")[-1] if name.startswith("replay-") else name.split(".", 1)[0]
            if not owner.isdigit():
                continue
            if int(owner) != self.pid and pid_alive(int(owner)):
                continue
            self._seq += 1
            target = self.dir / f"replay-{time.time_ns()}-{self._seq}-{self.pid}.jsonl"
            try:
                path.rename(target)
            except FileNotFoundError:
                continue  # another worker claimed it first
            claimed.append(target)
        return claimed

    def pending(self) -> bool:
        return self.dir.is_dir() and any(p.suffix == ".jsonl" for p in self.dir.iterdir())

    @staticmethod
    def read(path: Path) -> list[Row]:
        """The rows of a spill file (lines holding a record object, from older versions, included)."""
        out = []
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                row = from_spill(orjson.loads(line))
            except orjson.JSONDecodeError:
                row = None
            if row is None:
                # A line cut by a crash mid-write: the rest of the file is still good.
                log.warning("skipping a damaged line in %s", path)
                continue
            out.append(row)
        return out


class LedgerWriter:
    def __init__(
        self,
        store: LogStore,
        spill: SpillFile,
        *,
        interval: float = 1.0,
        batch: int = 512,
        write_timeout: float = 5.0,
        retention_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        #: Backoff after a failed write and the retention purge's cut-off read this clock.
        self.clock = clock
        self.spill = spill
        self._interval = interval
        self._batch = batch
        self._write_timeout = write_timeout
        self._retention_s = retention_s
        self._pending: list[Row | Mapping[str, Any]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.store_up = True
        self._retry_at = 0.0
        self._backoff = 0.5
        self._next_purge = 0.0
        # Counters for /metrics.
        self.written = 0
        self.spilled = 0
        self.replayed = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, row: Row | Mapping[str, Any]) -> None:
        """Queue one record: a row from ``build_row`` (or a record dict, converted when written)."""
        self._pending.append(row)
        if self._task is None:
            self.start()
        elif len(self._pending) >= self._batch and self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
            # Records spilled by an earlier run (or a dead worker) are replayed at once.
            self._retry_at = 0.0
            self.store_up = not self.spill.pending()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()
            await self._maintain()

    async def flush(self) -> None:
        """Write what is pending; on failure (or while the store is down) spill it."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if self.store_up and await self._write(batch):
            return
        await asyncio.to_thread(self.spill.append, batch)
        self.spilled += len(batch)

    async def _write(self, batch: Sequence[Row | Mapping[str, Any]]) -> bool:
        # Not wait_for: it waits for the cancelled write to unwind, and a driver cancelling a
        # query on a hung server can hang as long as the server does. The abandoned write may
        # still commit later; the records are spilled anyway and the replay skips them by id.
        task = asyncio.ensure_future(self.store.write(batch))
        done, _ = await asyncio.wait({task}, timeout=self._write_timeout)
        if not done:
            task.cancel()
            task.add_done_callback(_retrieve)
            self._mark_down(TimeoutError(f"no answer in {self._write_timeout:g} s"), len(batch))
            return False
        exc = task.exception()
        if exc is not None:
            self._mark_down(exc, len(batch))
            return False
        self.written += len(batch)
        return True

    def _mark_down(self, exc: BaseException, count: int) -> None:
        self.failures += 1
        if self.store_up:
            log.warning("request log store (%s) failed (%s: %s); spilling %d records to %s until it is back",
                        self.store.kind, type(exc).__name__, exc, count, self.spill.dir)
        self.store_up = False
        self._retry_at = self.clock.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 5.0)

    async def _maintain(self) -> None:
        now = self.clock.monotonic()
        if not self.store_up and now >= self._retry_at:
            await self.replay()
        if self.store_up and self._retention_s is not None and now >= self._next_purge:
            self._next_purge = now + 3600.0
            try:
                deleted = await self.store.purge(self.clock.time() - self._retention_s)
            except Exception as exc:  # noqa: BLE001 - retention is retried next hour; writes go on
                log.warning("request log retention purge failed: %s", exc)
            else:
                if deleted:
                    log.info("request log retention: deleted %d records", deleted)

    async def replay(self) -> bool:
        """Write back every spilled record; True when nothing is left to replay."""
        for path in await asyncio.to_thread(self.spill.claim):
            records = await asyncio.to_thread(SpillFile.read, path)
            for i in range(0, len(records), _REPLAY_CHUNK):
                chunk = records[i:i + _REPLAY_CHUNK]
                if not await self._write(chunk):
                    return False  # the file stays; replaying its written part again is harmless
                self.replayed += len(chunk)
            path.unlink(missing_ok=True)
        if not self.store_up:
            log.warning("request log store (%s) is back; spilled records replayed", self.store.kind)
        self.store_up = True
        self._backoff = 0.5
        return True

    async def drain(self) -> None:
        """Graceful shutdown: stop the loop, write (or spill) everything, then close the store."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()
        if self.store_up and self.spill.pending():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.replay(), self._write_timeout * 2)
        await self.store.close()
