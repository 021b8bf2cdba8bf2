"""Opening the embedded SQLite state file, in one place: connection settings, pragmas, a locked connection.

Every SQLite connection interlock opens is made by :func:`connect`: autocommit
(transactions are explicit), usable from worker threads, and a generous busy
timeout so processes sharing the file wait for each other instead of failing.
:class:`Pragmas` says what else a connection sets; :data:`STATE` (write-ahead
log, ``synchronous=NORMAL``) is what the state stores use. ``journal_mode`` is
a property of the file, so a connection that leaves it alone
(:data:`KEEP_JOURNAL`) still gets WAL on a file a state store opened before.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from interlock.state.migrations import Schema, migrate_sqlite, rollback, sqlite_versions

#: How long a statement waits for another connection's lock before failing (``sqlite3.OperationalError``).
BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Pragmas:
    #: ``journal_mode=WAL`` and ``synchronous=NORMAL``; False leaves the file's journal and the default sync.
    wal: bool = True
    #: ``cache_size`` in KiB (None: SQLite's default).
    cache_kib: int | None = None
    #: ``wal_autocheckpoint`` in pages (None: SQLite's default).
    checkpoint_pages: int | None = None


STATE = Pragmas()
KEEP_JOURNAL = Pragmas(wal=False)


def connect(path: Path, pragmas: Pragmas = STATE) -> sqlite3.Connection:
    """A connection to ``path`` (created with its directory if need be), set up as ``pragmas`` say."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        if pragmas.wal:
            _set_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        if pragmas.cache_kib is not None:
            conn.execute(f"PRAGMA cache_size = -{int(pragmas.cache_kib)}")
        if pragmas.checkpoint_pages is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(pragmas.checkpoint_pages)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _set_wal(conn: sqlite3.Connection) -> None:
    """``journal_mode=WAL``, waiting out other connections as a statement would.

    Switching a file still in rollback-journal mode to WAL needs it unlocked, and SQLite answers
    "database is locked" at once, without its busy handler, while another connection holds a lock
    (processes opening a new file together, one of them migrating it): retry until the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class SQLiteDB:
    """One connection to a state file, the lock that serialises its users, and its migrated schemas.

    Stores call it from worker threads: :meth:`locked` for a statement or two in
    autocommit, :meth:`transaction` for a write transaction (``BEGIN IMMEDIATE``,
    committed on success and rolled back on any exception).
    """

    def __init__(self, path: Path, pragmas: Pragmas = STATE, schemas: Sequence[Schema] = ()) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.conn = connect(path, pragmas)
        self.versions: dict[str, int] = {}
        if schemas:
            try:
                self.migrate(schemas)
            except BaseException:
                self.conn.close()
                raise

    def migrate(self, schemas: Sequence[Schema]) -> dict[str, int]:
        with self.lock:
            self.versions.update(migrate_sqlite(self.conn, schemas))
        return {s.component: self.versions[s.component] for s in schemas}

    def recorded(self) -> dict[str, int]:
        """Each component's version as the file records it."""
        with self.lock:
            return sqlite_versions(self.conn)

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            yield self.conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # Any failure must end the transaction, or every later one on this connection fails
                # with "cannot start a transaction within a transaction".
                rollback(conn)
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
