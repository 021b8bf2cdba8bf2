"""The request log in PostgreSQL (``store: postgresql://...``), for several gateways sharing one log.

A batch is written in one transaction: the rows (``rowcodec.ROW_COLUMNS``, as
built on the hot path) are ``COPY``-ed into the session's staging table, then
one statement moves them into ``requests`` with ``ON CONFLICT (id) DO
NOTHING`` (a batch replayed after an outage counts nothing twice) and upserts
the rollups of the rows it actually inserted - the grouping and summing run in
the database, not in the gateway's Python. The staging table is emptied by the
commit (``ON COMMIT DELETE ROWS`` truncates it): deleting its rows instead
would leave them dead in a table no vacuum ever visits, so it would grow for
as long as the session lives and every batch would scan all of it.
Migrations are numbered, recorded in ``interlock_schema`` and applied under an
advisory lock, so gateways starting together apply each one exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from interlock.ledger.record import COLUMNS, JSON_COLUMNS
from interlock.ledger.rowcodec import READ_COLUMNS, ROW_COLUMNS, TEXT_COLUMNS, Row, as_rows, decode_row
from interlock.ledger.schema import (
    DIMS_TABLE_SQL,
    ROLLUP_KEYS,
    ROLLUP_VALUES,
    LogQuery,
    SpendQuery,
    dollar,
    log_sql,
    pg_write_sql,
    spend_rows,
    spend_sql,
)

_TYPES = {
    "id": "text PRIMARY KEY", "received_at": "double precision NOT NULL", "inbound": "text NOT NULL",
    "stream": "integer NOT NULL", "status": "integer NOT NULL", "cost_estimated": "integer NOT NULL DEFAULT 0",
    "simulated": "integer NOT NULL DEFAULT 0", "cache_hit": "integer NOT NULL DEFAULT 0",
}
_REAL = {"first_byte_at", "done_at", "duration_ms", "ttft_ms", "output_tps"}
_INT = {"input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"}


def _column_type(column: str) -> str:
    if column in _TYPES:
        return _TYPES[column]
    if column in JSON_COLUMNS:
        return "jsonb"
    if column in _REAL:
        return "double precision"
    if column in _INT:
        return "integer"
    if column == "cost_picousd":
        return "bigint"
    return "text"


MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, f"""
CREATE TABLE IF NOT EXISTS requests ({', '.join(f'{c} {_column_type(c)}' for c in COLUMNS)});
CREATE INDEX IF NOT EXISTS requests_received ON requests (received_at, id);
CREATE INDEX IF NOT EXISTS requests_project ON requests (project, received_at);
CREATE INDEX IF NOT EXISTS requests_key ON requests (key_id, received_at);
CREATE TABLE IF NOT EXISTS spend_daily (
    day text NOT NULL, project text NOT NULL, key_id text NOT NULL, model text NOT NULL, vendor text NOT NULL,
    tag text NOT NULL,
    {', '.join(f'{v} bigint NOT NULL DEFAULT 0' for v in ROLLUP_VALUES)},
    PRIMARY KEY ({', '.join(ROLLUP_KEYS)})
);
CREATE INDEX IF NOT EXISTS spend_tag_day ON spend_daily (tag, day);
{DIMS_TABLE_SQL.format(values=', '.join(f'{v} bigint NOT NULL DEFAULT 0' for v in ROLLUP_VALUES))};
"""),
    # Records are written as rows (rowcodec.ROW_COLUMNS): the rest of a record in one compact JSON array;
    # rows written before keep their columns.
    (2, "ALTER TABLE requests ADD COLUMN IF NOT EXISTS detail json"),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

#: The staging table COPY fills: exactly a row's columns, typed as in ``requests`` - but text for the
#: columns a row holds as "" when absent (``rowcodec.TEXT_COLUMNS``), made NULL (and jsonb) when moved.
_ROW_TYPES = {"detail": "json", **{c: _column_type(c).replace(" NOT NULL", "").replace(" PRIMARY KEY", "")
                                   .replace(" DEFAULT 0", "") for c in COLUMNS}}
_STAGE_TABLE = "requests_row"
_STAGE = (f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_TABLE} ("
          + ", ".join(f"{c} {'text' if c in TEXT_COLUMNS else _ROW_TYPES[c]}" for c in ROW_COLUMNS)
          + ") ON COMMIT DELETE ROWS")
_VALUES = tuple((f"NULLIF({c}, '')" + ("" if _ROW_TYPES[c] == "text" else f"::{_ROW_TYPES[c]}"))
                if c in TEXT_COLUMNS else c for c in ROW_COLUMNS)
_WRITE = pg_write_sql(ROW_COLUMNS, _VALUES, _STAGE_TABLE)
_SELECT = f"SELECT {', '.join(READ_COLUMNS)} FROM requests"


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Each pooled connection gets its staging table once (a temporary table lives as long as the session)."""
    await conn.execute(_STAGE)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections are not reset: the log never changes session state, and a reset is a round trip."""


class PostgresLog:
    """The asynchronous log-store interface over an asyncpg pool."""

    kind = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 5.0) -> None:
        self.url = url
        self._min = min_size
        self._max = max_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:  # concurrent first calls share one pool
            return await self._open()

    async def _open(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await asyncpg.create_pool(self.url, min_size=self._min, max_size=self._max,
                                             timeout=self._timeout, command_timeout=30, init=_init_connection,
                                             reset=_keep_session)
            try:
                async with pool.acquire() as conn:
                    await migrate(conn)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
        return self._pool

    async def write(self, records: Sequence[Row | Mapping[str, Any]]) -> int:
        """One transaction: COPY into the staging table, then one statement that moves its rows into
        ``requests`` and the rollups; the commit empties the staging table."""
        rows = as_rows(records)
        if not rows:
            return 0
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(_STAGE_TABLE, records=rows, columns=ROW_COLUMNS)
                    inserted = await conn.fetchval(_WRITE)
            except BaseException:
                # The session goes, and with it whatever this batch left in its staging table: the next
                # write on a fresh connection starts empty (the writer spills and replays this batch).
                conn.terminate()
                raise
        return int(inserted)

    async def query(self, q: LogQuery) -> list[dict[str, Any]]:
        sql, args = log_sql(q, dollar, postgres=True)
        pool = await self._get_pool()
        rows = await pool.fetch(sql, *args)
        return [decode_row(tuple(row)) for row in rows]

    async def get(self, rid: str) -> dict[str, Any] | None:
        pool = await self._get_pool()
        row = await pool.fetchrow(f"{_SELECT} WHERE id = $1", rid)
        return None if row is None else decode_row(tuple(row))

    async def spend(self, q: SpendQuery) -> list[dict[str, Any]]:
        sql, args = spend_sql(q, dollar, postgres=True)
        pool = await self._get_pool()
        return spend_rows(q.group_by, [tuple(r.values()) for r in await pool.fetch(sql, *args)])

    async def purge(self, before: float) -> int:
        pool = await self._get_pool()
        status = await pool.execute("DELETE FROM requests WHERE received_at < $1", before)
        return int(status.split()[-1])

    async def ping(self) -> None:
        pool = await self._get_pool()
        await pool.fetchval("SELECT 1", timeout=self._timeout)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply the migrations this database lacks; returns the schema version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7315028347)")
        await conn.execute("CREATE TABLE IF NOT EXISTS interlock_schema "
                           "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM interlock_schema")
        for version, sql in MIGRATIONS:
            if version > current:
                await conn.execute(sql)
                await conn.execute("INSERT INTO interlock_schema (version) VALUES ($1)", version)
                current = version
    return int(current)
