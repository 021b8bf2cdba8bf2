"""The embedded state store: one SQLite file in WAL mode.

It holds what must survive a restart - gateway metadata (the admin key's
digest), the request log and the daily spend rollups. It is never touched on
the hot path: the log is written in batches from a worker thread (see
``writer.py``), metadata is read once at start, and queries (admin API, CLI)
use their own connection so a long read never holds up a write (WAL lets
readers and the writer proceed together).

The schema is versioned with ``PRAGMA user_version``; each migration runs once,
in a write transaction, so workers starting together cannot apply one twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from interlock.ledger.record import COLUMNS
from interlock.ledger.responses_store import SQLITE_TABLE as SQLITE_RESPONSES_TABLE
from interlock.ledger.rowcodec import (
    READ_COLUMNS,
    ROW_COLUMNS,
    TEXT_COLUMNS,
    Row,
    as_rows,
    decode_row,
    row_from_record,
)
from interlock.ledger.schema import (
    DIM_KEYS,
    DIMS_BACKFILL_SQL,
    DIMS_TABLE_SQL,
    ROLLUP_KEYS,
    ROLLUP_VALUES,
    LogQuery,
    SpendQuery,
    dim_deltas,
    log_sql,
    qmark,
    rollup_deltas,
    spend_rows,
    spend_sql,
)

_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id                 TEXT PRIMARY KEY,
    received_at        REAL NOT NULL,
    duration_ms        REAL,
    ttft_ms            REAL,
    inbound            TEXT NOT NULL,
    requested_model    TEXT,
    model              TEXT,
    vendor             TEXT,
    vendor_model       TEXT,
    stream             INTEGER NOT NULL,
    status             INTEGER NOT NULL,
    error_type         TEXT,
    error_message      TEXT,
    input_tokens       INTEGER,
    cache_read_tokens  INTEGER,
    cache_write_tokens INTEGER,
    output_tokens      INTEGER,
    reasoning_tokens   INTEGER,
    cost_picousd       INTEGER,
    cost_estimated     INTEGER NOT NULL DEFAULT 0,
    simulated          INTEGER NOT NULL DEFAULT 0,
    explanation        TEXT
);
CREATE INDEX IF NOT EXISTS requests_received ON requests (received_at);
"""

#: Columns added in v2, with their SQLite types.
_V2_COLUMNS = {
    "first_byte_at": "REAL", "done_at": "REAL", "output_tps": "REAL", "project": "TEXT", "key_id": "TEXT",
    "end_user": "TEXT", "tags": "TEXT", "cache_hit": "INTEGER NOT NULL DEFAULT 0", "attempts": "TEXT",
    "guardrails": "TEXT", "routing_trace": "TEXT", "content_level": "TEXT", "request_content": "TEXT",
    "response_content": "TEXT",
}

_V2_TABLES = f"""
CREATE TABLE IF NOT EXISTS spend_daily (
    day TEXT NOT NULL, project TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL, vendor TEXT NOT NULL,
    tag TEXT NOT NULL,
    {', '.join(f'{v} INTEGER NOT NULL DEFAULT 0' for v in ROLLUP_VALUES)},
    PRIMARY KEY ({', '.join(ROLLUP_KEYS)})
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spend_tag_day ON spend_daily (tag, day);
{DIMS_TABLE_SQL.format(values=', '.join(f'{v} INTEGER NOT NULL DEFAULT 0' for v in ROLLUP_VALUES))} WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_project ON requests (project, received_at);
CREATE INDEX IF NOT EXISTS requests_key ON requests (key_id, received_at);
"""

#: v3: a record is written as a row (``rowcodec.ROW_COLUMNS``): the fields filters and rollups read in their
#: columns, the rest in one compact JSON array (``detail``); rows written before keep their columns.
_V3 = """
ALTER TABLE requests ADD COLUMN detail TEXT;
"""

#: v4: stored Responses API responses (``responses_store.py``) carry the project that may read them; the table
#: is created here if no response was stored yet, and rows stored before (project NULL) are the admin key's.
SCHEMA_VERSION = 4
#: Page cache of the writing connection (KiB; SQLite's default is 2 MiB), and the WAL size (pages; default
#: 1000) at which its commits checkpoint. Both cut the I/O per record by a fifth or more (``bench/ledger_cost.py``).
WRITER_CACHE_KIB = 32768
WRITER_CHECKPOINT_PAGES = 8000

_NULL_IF_EMPTY = "NULLIF(?, '')"
_INSERT = (f"INSERT INTO requests ({', '.join(ROW_COLUMNS)}) VALUES "
           f"({', '.join(_NULL_IF_EMPTY if c in TEXT_COLUMNS else '?' for c in ROW_COLUMNS)}) "
           "ON CONFLICT (id) DO NOTHING")
_SELECT = f"SELECT {', '.join(READ_COLUMNS)} FROM requests"
_UPSERT_ROLLUP = (
    f"INSERT INTO spend_daily ({', '.join(ROLLUP_KEYS + ROLLUP_VALUES)}) "
    f"VALUES ({', '.join('?' for _ in ROLLUP_KEYS + ROLLUP_VALUES)}) "
    f"ON CONFLICT ({', '.join(ROLLUP_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{v} = {v} + excluded.{v}" for v in ROLLUP_VALUES)
)
_UPSERT_DIMS = (
    f"INSERT INTO spend_dims ({', '.join(DIM_KEYS + ROLLUP_VALUES)}) "
    f"VALUES ({', '.join('?' for _ in DIM_KEYS + ROLLUP_VALUES)}) "
    f"ON CONFLICT ({', '.join(DIM_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{v} = {v} + excluded.{v}" for v in ROLLUP_VALUES)
)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SQLiteStore:
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = _connect(path)
        self._read_lock = threading.Lock()
        self._read: sqlite3.Connection | None = None
        with self._lock:
            self._migrate()
            # The writer's page cache: the indexes' recently written pages stay in memory between batches;
            # and a longer WAL between checkpoints, which copy a page rewritten by many batches only once.
            self._conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")

    # ------------------------------------------------------------ schema

    def _migrate(self) -> None:
        conn = self._conn
        if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version < 1:
                for statement in _V1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version < 2:
                have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
                for column, decl in _V2_COLUMNS.items():
                    if column not in have:
                        conn.execute(f"ALTER TABLE requests ADD COLUMN {column} {decl}")
                for statement in _V2_TABLES.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                self._backfill_rollups(conn)
                for statement in DIMS_BACKFILL_SQL:
                    conn.execute(statement)
            if version < 3:
                for statement in _V3.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version < 4:
                self._responses_v4(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _responses_v4(conn: sqlite3.Connection) -> None:
        have = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
        if have and "project" not in have:  # a table the previous version created
            conn.execute("ALTER TABLE responses ADD COLUMN project TEXT")
        for statement in SQLITE_RESPONSES_TABLE.split(";"):
            if statement.strip():
                conn.execute(statement)

    @staticmethod
    def _backfill_rollups(conn: sqlite3.Connection) -> None:
        """Records logged before v2 enter the rollups once, so spend covers the whole log."""
        cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM requests")
        while rows := cur.fetchmany(5000):
            records = [row_from_record(decode_row((*row, None))) for row in rows]
            conn.executemany(_UPSERT_ROLLUP, rollup_deltas(records))

    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

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
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                last = conn.execute("SELECT coalesce(max(rowid), 0) FROM requests").fetchone()[0]
                inserted = conn.executemany(_INSERT, rows).rowcount
                if inserted != len(rows):
                    rows = self._inserted(conn, rows, last)
                deltas = rollup_deltas(rows)
                if deltas:
                    conn.executemany(_UPSERT_ROLLUP, deltas)
                    conn.executemany(_UPSERT_DIMS, dim_deltas(deltas))
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
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
                self._read = _connect(self.path)
            return fn(self._read)

    def query_logs(self, q: LogQuery) -> list[dict[str, Any]]:
        sql, args = log_sql(q, qmark, postgres=False)
        rows = self._query(lambda c: c.execute(sql, args).fetchall())
        return [decode_row(row) for row in rows]

    def get_log(self, rid: str) -> dict[str, Any] | None:
        row = self._query(lambda c: c.execute(f"{_SELECT} WHERE id = ?", (rid,)).fetchone())
        return None if row is None else decode_row(row)

    def spend(self, q: SpendQuery) -> list[dict[str, Any]]:
        sql, args = spend_sql(q, qmark, postgres=False)
        return spend_rows(q.group_by, self._query(lambda c: c.execute(sql, args).fetchall()))

    def purge(self, before: float, chunk: int = 5000) -> int:
        """Delete records received before ``before`` in small transactions (the writer never waits long).

        Rollups stay: they are the long-term spend record, and are tiny.
        """
        total = 0
        while True:
            with self._lock:
                cur = self._conn.execute(
                    "DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests WHERE received_at < ? LIMIT ?)",
                    (before, chunk))
                deleted = cur.rowcount
            total += deleted
            if deleted < chunk:
                return total

    def ping(self) -> None:
        with self._lock:
            self._conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
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

    async def spend(self, q: SpendQuery) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.spend, q)

    async def purge(self, before: float) -> int:
        return await asyncio.to_thread(self.store.purge, before)

    async def ping(self) -> None:
        await asyncio.to_thread(self.store.ping)

    async def close(self) -> None:
        """The SQLite file also holds gateway metadata: its owner (the Gateway) closes it."""
