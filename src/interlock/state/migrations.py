"""One migration runner for every table interlock keeps, in SQLite and in PostgreSQL.

A table family (the request log, stored responses, governance definitions)
declares a :class:`Schema`: its component name and, per dialect, an ordered
list of ``(version, step)``, a step being an SQL script or a callable. The
runner records what it applied in one table, ``schema_migrations(component,
version, applied_at)``, and applies what a database lacks in one transaction
taken under a lock (SQLite's ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock),
so processes starting together apply each migration exactly once; a failing
step rolls every step of that run back and raises :class:`MigrationError`.

The SQL of a family lives with its owner (``ledger/``, ``governance/``) and is
handed to the runner: it is written against that owner's row layout and
changes with it, while this layer sits below the owners and knows no table
but its own.

Databases created before this table existed kept their versions elsewhere
(``PRAGMA user_version``, ``interlock_schema``, ``governance_schema``): a
schema's ``legacy`` reader returns the version recorded there, and the first
run adopts the versions up to it instead of applying them again. The old
bookkeeping is read, never written or dropped.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: A SQLite step: a script (statements separated by ';') or a function run on the connection.
SQLiteStep = str | Callable[[sqlite3.Connection], None]
#: A PostgreSQL step: a script (sent as one simple query) or a coroutine function given the connection.
PgStep = str | Callable[[Any], Awaitable[None]]

TABLE = "schema_migrations"
#: ``pg_advisory_xact_lock`` key taken by every PostgreSQL run, whatever its components.
PG_LOCK = 7315028349

_SQLITE_TABLE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (component TEXT NOT NULL, version INTEGER NOT NULL, "
                 "applied_at REAL NOT NULL, PRIMARY KEY (component, version))")
_PG_TABLE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (component text NOT NULL, version integer NOT NULL, "
             "applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))")


class MigrationError(RuntimeError):
    """A migration step failed; nothing of the run that contained it was kept."""

    def __init__(self, component: str, version: int, dialect: str, cause: BaseException) -> None:
        super().__init__(f"{dialect} migration {component} {version} failed and was rolled back: "
                         f"{type(cause).__name__}: {cause}")
        self.component = component
        self.version = version
        self.dialect = dialect


def _check(component: str, steps: Sequence[tuple[int, object]]) -> None:
    versions = [v for v, _ in steps]
    if any(v < 1 for v in versions) or versions != sorted(set(versions)):
        raise ValueError(f"{component}: migration versions must be positive and strictly increasing: {versions}")


@dataclass(frozen=True, slots=True)
class Schema:
    """The migrations of one table family, per dialect, and how to read versions recorded before."""

    component: str
    sqlite: Sequence[tuple[int, SQLiteStep]] = ()
    postgres: Sequence[tuple[int, PgStep]] = ()
    #: The version a database made before ``schema_migrations`` is at (0: none), read in the run's transaction.
    sqlite_legacy: Callable[[sqlite3.Connection], int] | None = None
    postgres_legacy: Callable[[Any], Awaitable[int]] | None = None

    def __post_init__(self) -> None:
        _check(self.component, self.sqlite)
        _check(self.component, self.postgres)

    @property
    def sqlite_version(self) -> int:
        return self.sqlite[-1][0] if self.sqlite else 0

    @property
    def postgres_version(self) -> int:
        return self.postgres[-1][0] if self.postgres else 0


def statements(script: str) -> list[str]:
    """A script's statements (split on ';': scripts here hold no ';' inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _latest(applied: dict[str, set[int]], schemas: Sequence[Schema]) -> dict[str, int]:
    return {s.component: max(applied.get(s.component) or {0}) for s in schemas}


# ----------------------------------------------------------------- SQLite


def sqlite_user_version(conn: sqlite3.Connection) -> int:
    """``PRAGMA user_version`` (how the request log counted its SQLite migrations)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def sqlite_table_version(conn: sqlite3.Connection, table: str) -> int:
    """The largest ``version`` in a bookkeeping table of the old kind, 0 when there is no such table."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is None:
        return 0
    return int(conn.execute(f"SELECT coalesce(max(version), 0) FROM {table}").fetchone()[0])


def _sqlite_applied(conn: sqlite3.Connection) -> dict[str, set[int]] | None:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone() is None:
        return None
    applied: dict[str, set[int]] = {}
    for component, version in conn.execute(f"SELECT component, version FROM {TABLE}"):
        applied.setdefault(component, set()).add(int(version))
    return applied


def _sqlite_current(applied: dict[str, set[int]] | None, schemas: Sequence[Schema]) -> bool:
    return applied is not None and all(v in applied.get(s.component, ()) for s in schemas for v, _ in s.sqlite)


def migrate_sqlite(conn: sqlite3.Connection, schemas: Sequence[Schema]) -> dict[str, int]:
    """Bring the schemas up to date on ``conn`` (autocommit mode); returns each component's version.

    An up-to-date database is recognised by one read, without the write lock.
    """
    if conn.in_transaction:
        raise RuntimeError("migrate_sqlite needs a connection outside a transaction (isolation_level=None)")
    applied = _sqlite_applied(conn)
    if _sqlite_current(applied, schemas):
        assert applied is not None
        return _latest(applied, schemas)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SQLITE_TABLE)
        applied = _sqlite_applied(conn) or {}
        for schema in schemas:
            done = applied.setdefault(schema.component, set())
            if not done and schema.sqlite_legacy is not None:
                _adopt_sqlite(conn, schema, done, schema.sqlite_legacy(conn))
            for version, step in schema.sqlite:
                if version in done:
                    continue
                try:
                    if isinstance(step, str):
                        for statement in statements(step):
                            conn.execute(statement)
                    else:
                        step(conn)
                except OSError:
                    raise
                except Exception as exc:
                    raise MigrationError(schema.component, version, "sqlite", exc) from exc
                conn.execute(f"INSERT INTO {TABLE} (component, version, applied_at) VALUES (?, ?, ?)",
                             (schema.component, version, time.time()))
                done.add(version)
    except BaseException:
        rollback(conn)
        raise
    conn.execute("COMMIT")
    return _latest(applied, schemas)


def rollback(conn: sqlite3.Connection) -> None:
    """End the open transaction, if a failure left one (SQLite ends it itself after some errors)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _adopt_sqlite(conn: sqlite3.Connection, schema: Schema, done: set[int], legacy: int) -> None:
    now = time.time()
    for version, _ in schema.sqlite:
        if version <= legacy:
            conn.execute(f"INSERT INTO {TABLE} (component, version, applied_at) VALUES (?, ?, ?)",
                         (schema.component, version, now))
            done.add(version)


def sqlite_versions(conn: sqlite3.Connection) -> dict[str, int]:
    """Each component's highest recorded version (empty before the first run)."""
    applied = _sqlite_applied(conn) or {}
    return {component: max(versions) for component, versions in applied.items()}


# ----------------------------------------------------------------- PostgreSQL


async def pg_table_version(conn: Any, table: str) -> int:
    """The largest ``version`` in a bookkeeping table of the old kind, 0 when there is no such table."""
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return 0
    return int(await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {table}"))


async def _pg_applied(conn: Any, schemas: Sequence[Schema]) -> dict[str, set[int]]:
    applied: dict[str, set[int]] = {}
    rows = await conn.fetch(f"SELECT component, version FROM {TABLE} WHERE component = ANY($1::text[])",
                            [s.component for s in schemas])
    for row in rows:
        applied.setdefault(row[0], set()).add(int(row[1]))
    return applied


async def migrate_postgres(conn: Any, schemas: Sequence[Schema]) -> dict[str, int]:
    """Bring the schemas up to date on an asyncpg connection; returns each component's version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", PG_LOCK)
        await conn.execute(_PG_TABLE)
        applied = await _pg_applied(conn, schemas)
        for schema in schemas:
            done = applied.setdefault(schema.component, set())
            if not done and schema.postgres_legacy is not None:
                legacy = await schema.postgres_legacy(conn)
                for version, _ in schema.postgres:
                    if version <= legacy:
                        await _pg_record(conn, schema.component, version)
                        done.add(version)
            for version, step in schema.postgres:
                if version in done:
                    continue
                try:
                    if isinstance(step, str):
                        await conn.execute(step)
                    else:
                        await step(conn)
                except OSError:
                    raise
                except Exception as exc:
                    raise MigrationError(schema.component, version, "postgresql", exc) from exc
                await _pg_record(conn, schema.component, version)
                done.add(version)
    return _latest(applied, schemas)


async def _pg_record(conn: Any, component: str, version: int) -> None:
    await conn.execute(f"INSERT INTO {TABLE} (component, version) VALUES ($1, $2)", component, version)


async def postgres_versions(conn: Any) -> dict[str, int]:
    """Each component's highest recorded version (empty before the first run)."""
    if await conn.fetchval("SELECT to_regclass($1)", TABLE) is None:
        return {}
    rows = await conn.fetch(f"SELECT component, max(version) FROM {TABLE} GROUP BY component")
    return {row[0]: int(row[1]) for row in rows}
