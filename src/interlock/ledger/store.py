"""The embedded state store: one SQLite file in WAL mode.

It holds what must survive a restart - gateway metadata (the admin key's
digest) and the request log. It is never read or written on the hot path:
the log is written in batches from a worker thread (see ``writer.py``) and
metadata is read once at start.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_SCHEMA = """
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

COLUMNS = (
    "id", "received_at", "duration_ms", "ttft_ms", "inbound", "requested_model", "model", "vendor", "vendor_model",
    "stream", "status", "error_type", "error_message", "input_tokens", "cache_read_tokens", "cache_write_tokens",
    "output_tokens", "reasoning_tokens", "cost_picousd", "cost_estimated", "simulated", "explanation",
)
_INSERT = (f"INSERT OR REPLACE INTO requests ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join(':' + c for c in COLUMNS)})")


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def insert_requests(self, records: Iterable[Mapping[str, Any]]) -> None:
        rows = [{c: r.get(c) for c in COLUMNS} for r in records]
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(_INSERT, rows)
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def recent_requests(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(f"SELECT {', '.join(COLUMNS)} FROM requests ORDER BY received_at DESC LIMIT ?",
                                     (limit,))
            return [dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()]

    def ping(self) -> None:
        with self._lock:
            self._conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
