"""Stored Responses API responses: what ``previous_response_id`` and ``GET /v1/responses/{id}`` read.

A response is kept with the conversation that produced it, already in the
canonical (Chat) shape, so a follow-up request is rebuilt with one read - no
walk up a chain of ids. It lives in the ``responses`` table of the state store:
the embedded SQLite file (on a connection of its own, every call in a worker
thread, so the event loop never waits on SQLite) or PostgreSQL when ``store:``
names one (so every gateway sharing that database sees every response).

Every read and delete is scoped to an :class:`Owner`: a project sees only the
responses its requests stored, and another project's id is indistinguishable
from an unknown one (the SQL matches id *and* project, so nothing else is read
or deleted). The admin key sees every response; rows stored before responses
carried a project (project NULL) are visible to the admin key only.

A write is started when the answer is sent but may finish a moment later; a
follow-up that names the response before then waits for that write (in this
process) instead of missing it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from interlock.core.errors import GatewayError
from interlock.core.responses import Owner, StoredResponse
from interlock.state.migrations import Schema, pg_table_version, sqlite_user_version
from interlock.state.sqlite import KEEP_JOURNAL, SQLiteDB

if TYPE_CHECKING:  # pgstore imports this module (its migrations): a cycle inside ledger, for a type only
    from interlock.ledger.pgstore import PostgresLog

log = logging.getLogger("interlock")

_COLUMNS = "id, created_at, model, owner, project, previous_response_id, response, input_items, conversation"

#: The table in SQLite.
SQLITE_TABLE = """
CREATE TABLE IF NOT EXISTS responses (
    id                   TEXT PRIMARY KEY,
    created_at           REAL NOT NULL,
    model                TEXT,
    owner                TEXT,
    previous_response_id TEXT,
    response             BLOB NOT NULL,
    input_items          BLOB NOT NULL,
    conversation         BLOB NOT NULL,
    project              TEXT
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created_at);
"""

#: The table in PostgreSQL; JSON is kept as the text orjson wrote.
PG_TABLE = """
CREATE TABLE IF NOT EXISTS responses (
    id text PRIMARY KEY, created_at double precision NOT NULL, model text, owner text, project text,
    previous_response_id text, response text NOT NULL, input_items text NOT NULL, conversation text NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created_at);
"""



def _sqlite_v1(conn: sqlite3.Connection) -> None:
    """The table, with ``project``: rows stored before responses carried one keep it NULL (admin-only)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
    if have and "project" not in have:
        conn.execute("ALTER TABLE responses ADD COLUMN project TEXT")
    for statement in SQLITE_TABLE.split(";"):
        if statement.strip():
            conn.execute(statement)


def _sqlite_legacy(conn: sqlite3.Connection) -> int:
    # The request log's migration 4 made this table (PRAGMA user_version counted the log's migrations).
    return 1 if sqlite_user_version(conn) >= 4 else 0


async def _pg_legacy(conn: Any) -> int:
    # The request log's migration 5 made this table (recorded in interlock_schema).
    return 1 if await pg_table_version(conn, "interlock_schema") >= 5 else 0


#: The ``responses`` component's migrations (``state.migrations``); the request log's stores apply them
#: with their own, and :class:`SQLiteResponses` on the file it opens.
SCHEMA = Schema("responses", sqlite=((1, _sqlite_v1),), postgres=((1, PG_TABLE),),
                sqlite_legacy=_sqlite_legacy, postgres_legacy=_pg_legacy)


def _from_row(row: Any) -> StoredResponse:
    return StoredResponse(id=row[0], created_at=row[1], model=row[2], owner=row[3], project=row[4],
                          previous_response_id=row[5], response=orjson.loads(row[6]),
                          input_items=orjson.loads(row[7]), conversation=orjson.loads(row[8]))


def _where(owner: Owner, ph: str) -> str:
    """The scope condition after ``id = <ph1>``: nothing for the admin, the project otherwise."""
    return "" if owner.admin else f" AND project = {ph}"


class ResponsesStore(ABC):
    """Writes started in the background, reads and deletes scoped to an owner."""

    #: What the backend raises when it cannot answer (the database is down or locked): a 503, not a 500.
    failures: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._writes: dict[str, asyncio.Future[None]] = {}

    @abstractmethod
    async def _put(self, item: StoredResponse) -> None: ...

    @abstractmethod
    async def _get(self, response_id: str, owner: Owner) -> StoredResponse | None: ...

    @abstractmethod
    async def _delete(self, response_id: str, owner: Owner) -> bool: ...

    def save_soon(self, item: StoredResponse) -> None:
        """Start writing ``item``; the caller does not wait for it."""
        future = asyncio.ensure_future(self._put(item))
        self._writes[item.id] = future
        future.add_done_callback(lambda f: self._written(item.id, f))

    def _written(self, response_id: str, future: asyncio.Future[None]) -> None:
        if self._writes.get(response_id) is future:
            del self._writes[response_id]
        if not future.cancelled() and future.exception() is not None:
            log.error("could not store response %s: %s", response_id, type(future.exception()).__name__)

    async def _settled(self, response_id: str) -> None:
        pending = self._writes.get(response_id)
        if pending is not None:
            await asyncio.wait([pending])  # a failed write was logged; the read then finds nothing

    async def get(self, response_id: str, owner: Owner) -> StoredResponse | None:
        """The response, if ``owner`` may see it; None for an unknown id and for another project's alike."""
        if owner.sees_nothing:
            return None
        await self._settled(response_id)
        try:
            return await self._get(response_id, owner)
        except self.failures as exc:
            raise _unavailable(exc) from None

    async def delete(self, response_id: str, owner: Owner) -> bool:
        """Delete the response if ``owner`` may; another project's response is left untouched."""
        if owner.sees_nothing:
            return False
        await self._settled(response_id)
        try:
            return await self._delete(response_id, owner)
        except self.failures as exc:
            raise _unavailable(exc) from None


def _unavailable(exc: BaseException) -> GatewayError:
    # The detail (addresses, errno) is for the operator; the caller learns only that it may retry.
    log.warning("the response store failed: %s: %s", type(exc).__name__, exc)
    return GatewayError("Stored responses are unavailable at the moment; try again shortly.", status=503,
                        code="store_unavailable")


class SQLiteResponses(ResponsesStore):
    """The ``responses`` table of the embedded SQLite state file."""

    failures = (sqlite3.OperationalError,)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.db = SQLiteDB(path, KEEP_JOURNAL, (SCHEMA,))

    # ------------------------------------------------------------ blocking (worker threads)

    def put_sync(self, item: StoredResponse) -> None:
        with self.db.locked() as conn:
            conn.execute(f"INSERT OR REPLACE INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               item.row())

    def get_sync(self, response_id: str, owner: Owner) -> StoredResponse | None:
        args = (response_id,) if owner.admin else (response_id, owner.project)
        with self.db.locked() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM responses WHERE id = ?{_where(owner, '?')}",
                                     args).fetchone()
        return None if row is None else _from_row(row)

    def delete_sync(self, response_id: str, owner: Owner) -> bool:
        args = (response_id,) if owner.admin else (response_id, owner.project)
        with self.db.locked() as conn:
            cur = conn.execute(f"DELETE FROM responses WHERE id = ?{_where(owner, '?')}", args)
        return cur.rowcount > 0

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ async (event loop)

    async def _put(self, item: StoredResponse) -> None:
        await asyncio.to_thread(self.put_sync, item)

    async def _get(self, response_id: str, owner: Owner) -> StoredResponse | None:
        return await asyncio.to_thread(self.get_sync, response_id, owner)

    async def _delete(self, response_id: str, owner: Owner) -> bool:
        return await asyncio.to_thread(self.delete_sync, response_id, owner)


class PostgresResponses(ResponsesStore):
    """The ``responses`` table in PostgreSQL, over the request log's pool (which applied the migrations)."""

    failures = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

    def __init__(self, log_store: PostgresLog) -> None:
        super().__init__()
        self._log = log_store

    async def _put(self, item: StoredResponse) -> None:
        pool = await self._log.pool()
        row = item.row()
        await pool.execute(
            f"INSERT INTO responses ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (id) DO UPDATE SET response = excluded.response, input_items = excluded.input_items, "
            "conversation = excluded.conversation",
            *row[:6], *(value.decode() for value in row[6:]))

    async def _get(self, response_id: str, owner: Owner) -> StoredResponse | None:
        pool = await self._log.pool()
        args = (response_id,) if owner.admin else (response_id, owner.project)
        row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM responses WHERE id = $1{_where(owner, '$2')}", *args)
        return None if row is None else _from_row(tuple(row))

    async def _delete(self, response_id: str, owner: Owner) -> bool:
        pool = await self._log.pool()
        args = (response_id,) if owner.admin else (response_id, owner.project)
        status = await pool.execute(f"DELETE FROM responses WHERE id = $1{_where(owner, '$2')}", *args)
        return bool(int(status.split()[-1]))
