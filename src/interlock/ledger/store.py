"""The embedded state store: one SQLite file in WAL mode.

It holds what must survive a restart - gateway metadata (the admin key's
digest), the request log, the daily spend rollups, the hourly route rollup and
the hourly usage rollup (``usage.py``). It is never touched on
the hot path: the log is written in batches from a worker thread (see
``writer.py``), metadata is read once at start, and queries (admin API, CLI)
use their own connection so a long read never holds up a write (WAL lets
readers and the writer proceed together).

Opening the file and migrating its tables (``migrations.SCHEMA`` and the
stored responses' ``responses_store.SCHEMA``) is the state layer's
(``state.sqlite``, ``state.migrations``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from interlock.ledger.migrations import SCHEMA
from interlock.ledger.responses_store import SCHEMA as RESPONSES_SCHEMA
from interlock.ledger.routes import SELECT_SQL, SQLITE_UPSERT_ROUTES, route_deltas
from interlock.ledger.rowcodec import (
    READ_COLUMNS,
    ROW_COLUMNS,
    TEXT_COLUMNS,
    Row,
    as_rows,
    decode_row,
)
from interlock.ledger.schema import (
    MAX_KEYS,
    SQLITE_UPSERT_DIMS,
    SQLITE_UPSERT_ROLLUP,
    LogQuery,
    SpendQuery,
    dim_deltas,
    log_sql,
    qmark,
    rollup_deltas,
    spend_rows,
    spend_sql,
)
from interlock.ledger.usage import SQLITE_UPSERT_USAGE, Read, usage_deltas
from interlock.state.sqlite import Pragmas, SQLiteDB, connect

#: Page cache of the writing connection (KiB; SQLite's default is 2 MiB), and the WAL size (pages; default
#: 1000) at which its commits checkpoint. Both cut the I/O per record by a fifth or more (``bench/ledger_cost.py``).
WRITER_CACHE_KIB = 32768
WRITER_CHECKPOINT_PAGES = 8000

_NULL_IF_EMPTY = "NULLIF(?, '')"
_INSERT = (f"INSERT INTO requests ({', '.join(ROW_COLUMNS)}) VALUES "
           f"({', '.join(_NULL_IF_EMPTY if c in TEXT_COLUMNS else '?' for c in ROW_COLUMNS)}) "
           "ON CONFLICT (id) DO NOTHING")
_SELECT = f"SELECT {', '.join(READ_COLUMNS)} FROM requests"
_ROUTE_HOURS = SELECT_SQL.format("?", "?")

#: The request log's version of the schema (``migrations.SCHEMA``'s last SQLite migration).
SCHEMA_VERSION = SCHEMA.sqlite_version
#: The writing connection: the indexes' recently written pages stay in memory between batches, and a
#: longer WAL between checkpoints copies a page rewritten by many batches only once.
WRITER = Pragmas(cache_kib=WRITER_CACHE_KIB, checkpoint_pages=WRITER_CHECKPOINT_PAGES)


class SQLiteStore:
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = SQLiteDB(path, WRITER, (SCHEMA, RESPONSES_SCHEMA))
        self._read_lock = threading.Lock()
        self._read: sqlite3.Connection | None = None

    def schema_version(self) -> int:
        """The request log's schema version, as the file records it."""
        return self.db.recorded().get(SCHEMA.component, 0)

    # ------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        with self.db.locked() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.db.locked() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------ request log

    def insert_requests(self, records: Iterable[Row | Mapping[str, Any]]) -> int:
        """Insert records not already present and add them to the rollups; returns how many were new.

        Idempotent by id: a batch replayed after an outage (it may have been committed just
        before the connection dropped) counts nothing twice. Usually every row is new and
        the rollups are the batch's; otherwise they are those of the rows this call inserted
        (the rowids above the largest one before it: the transaction holds the write lock).
        """
        rows = as_rows(records)
        if not rows:
            return 0
        with self.db.transaction() as conn:
            last = conn.execute("SELECT coalesce(max(rowid), 0) FROM requests").fetchone()[0]
            inserted = conn.executemany(_INSERT, rows).rowcount
            if inserted != len(rows):
                rows = self._inserted(conn, rows, last)
            deltas = rollup_deltas(rows)
            if deltas:
                conn.executemany(SQLITE_UPSERT_ROLLUP, deltas)
                conn.executemany(SQLITE_UPSERT_DIMS, dim_deltas(deltas))
            routes = route_deltas(rows)
            if routes:
                conn.executemany(SQLITE_UPSERT_ROUTES, routes)
            conn.executemany(SQLITE_UPSERT_USAGE, usage_deltas(rows))
        return len(rows)

    @staticmethod
    def _inserted(conn: sqlite3.Connection, rows: list[Row], last: int) -> list[Row]:
        """The rows this transaction inserted (a replay: some ids were there already), in batch order."""
        new = {rid for (rid,) in conn.execute("SELECT id FROM requests WHERE rowid > ?", (last,))}
        out = []
        for row in rows:
            if row[0] in new:
                new.discard(row[0])  # an id twice in the batch was inserted once
                out.append(row)
        return out

    def _query(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._read_lock:
            if self._read is None:
                self._read = connect(self.path)
            return fn(self._read)

    def query_logs(self, q: LogQuery) -> list[dict[str, Any]]:
        sql, args = log_sql(q, qmark, postgres=False)
        rows = self._query(lambda c: c.execute(sql, args).fetchall())
        return [decode_row(row) for row in rows]

    def get_log(self, rid: str) -> dict[str, Any] | None:
        row = self._query(lambda c: c.execute(f"{_SELECT} WHERE id = ?", (rid,)).fetchone())
        return None if row is None else decode_row(row)

    def last_used(self, key_ids: Sequence[str]) -> dict[str, float]:
        """When each key last made a request: one indexed MAX per key (``requests_key``), no scan."""
        ids = list(dict.fromkeys(key_ids))[:MAX_KEYS]
        if not ids:
            return {}
        sql = " UNION ALL ".join("SELECT ?, (SELECT MAX(received_at) FROM requests WHERE key_id = ?)" for _ in ids)
        args = [x for kid in ids for x in (kid, kid)]
        rows = self._query(lambda c: c.execute(sql, args).fetchall())
        return {str(k): float(at) for k, at in rows if at is not None}

    def spend(self, q: SpendQuery) -> list[dict[str, Any]]:
        sql, args = spend_sql(q, qmark, postgres=False)
        return spend_rows(q.group_by, self._query(lambda c: c.execute(sql, args).fetchall()))

    def route_hours(self, model: str, since_hour: int) -> list[tuple[Any, ...]]:
        """``route_hourly``'s rows of one model from an epoch hour on (``routes.SELECT_SQL``)."""
        sql = _ROUTE_HOURS
        return [tuple(r) for r in self._query(lambda c: c.execute(sql, (model, since_hour)).fetchall())]

    def read_rollup(self, read: Read) -> list[tuple[Any, ...]]:
        """The rows of a rollup read (``usage``: the console's Overview and Spend)."""
        sql, args = read(qmark)
        return [tuple(r) for r in self._query(lambda c: c.execute(sql, args).fetchall())]

    def purge(self, before: float, chunk: int = 5000) -> int:
        """Delete records received before ``before`` in small transactions (the writer never waits long).

        Rollups stay: they are the long-term spend record, and are tiny.
        """
        total = 0
        while True:
            with self.db.locked() as conn:
                cur = conn.execute(
                    "DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests WHERE received_at < ? LIMIT ?)",
                    (before, chunk))
                deleted = cur.rowcount
            total += deleted
            if deleted < chunk:
                return total

    def ping(self) -> None:
        with self.db.locked() as conn:
            conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self.db.close()
        with self._read_lock:
            if self._read is not None:
                self._read.close()
                self._read = None


class SQLiteLog:
    """The asynchronous log-store interface over :class:`SQLiteStore` (each call in a worker thread)."""

    kind = "sqlite"

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    async def write(self, records: Sequence[Row | Mapping[str, Any]]) -> int:
        return await asyncio.to_thread(self.store.insert_requests, records)

    async def query(self, q: LogQuery) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.query_logs, q)

    async def get(self, rid: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.store.get_log, rid)

    async def last_used(self, key_ids: Sequence[str]) -> dict[str, float]:
        return await asyncio.to_thread(self.store.last_used, key_ids)

    async def spend(self, q: SpendQuery) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.spend, q)

    async def route_hours(self, model: str, since_hour: int) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.store.route_hours, model, since_hour)

    async def read_rollup(self, read: Read) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.store.read_rollup, read)

    async def purge(self, before: float) -> int:
        return await asyncio.to_thread(self.store.purge, before)

    async def ping(self) -> None:
        await asyncio.to_thread(self.store.ping)

    async def close(self) -> None:
        """The SQLite file also holds gateway metadata: its owner (the Gateway) closes it."""
