"""The request log in PostgreSQL (``store: postgresql://...``), for several gateways sharing one log.

A batch is written in one transaction of two statements: the rows
(``rowcodec.ROW_COLUMNS``, as built on the hot path, "" made NULL) are
``COPY``-ed straight into ``requests``, and the batch's rollups - summed in the
gateway as the SQLite store does (``schema.rollup_deltas``), one row per
day x project x key x model x vendor x tag, sent as one JSON array - are
upserted by one statement that also derives ``spend_dims`` from them. ``COPY`` inserts the heap tuples
several to a WAL record and evaluates nothing per row, which costs the server
about half of an ``INSERT ... SELECT ... ON CONFLICT`` from a staging table.
Writes stay idempotent: a batch replayed after an outage (committed just
before the connection dropped) fails the ``COPY`` on the primary key, and is
written again without the ids already stored, so nothing counts twice.
Migrations are numbered, recorded in ``interlock_schema`` and applied under an
advisory lock, so gateways starting together apply each one exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from interlock.ledger.record import COLUMNS, JSON_COLUMNS
from interlock.ledger.responses_store import PG_TABLE as PG_RESPONSES_TABLE
from interlock.ledger.rowcodec import (
    R_ID,
    R_KEY,
    R_MODEL,
    R_PROJECT,
    R_REQUEST,
    R_REQUESTED,
    R_RESPONSE,
    R_TAGS,
    R_VENDOR,
    ROW_COLUMNS,
    TEXT_COLUMNS,
    Row,
    as_rows,
    decode_row,
)
from interlock.ledger.schema import (
    DIMS_TABLE_SQL,
    PG_READ_COLUMNS,
    ROLLUP_KEYS,
    ROLLUP_VALUES,
    LogQuery,
    SpendQuery,
    dollar,
    log_sql,
    pg_rollup_sql,
    rollup_deltas,
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
    # ``detail`` becomes text: the gateway writes it as orjson's output, and a json column parses every
    # value it is given to validate it - a sixth of the server's CPU per record. Changing the column's
    # type would rewrite the table; renaming is instant, and the rows written before keep their detail in
    # ``detail_json`` (read as ``coalesce(detail, detail_json::text)``, schema.PG_READ_COLUMNS).
    (3, "ALTER TABLE requests RENAME COLUMN detail TO detail_json; ALTER TABLE requests ADD COLUMN detail text"),
    # Every batch updates its rollup rows in place: with room left on their pages the new versions stay
    # on the same page (HOT) and the rollup tables' indexes are not touched. Applies to pages filled from
    # now on; nothing is rewritten.
    (4, "ALTER TABLE spend_daily SET (fillfactor = 80); ALTER TABLE spend_dims SET (fillfactor = 80)"),
    # Stored Responses API responses live in the shared store too (every gateway on this database sees
    # them), each with the project that may read it (``responses_store.py``).
    (5, PG_RESPONSES_TABLE),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_SELECT = f"SELECT {', '.join(PG_READ_COLUMNS)} FROM requests"
_ROLLUP = pg_rollup_sql()
_EXISTING = "SELECT id FROM requests WHERE id = ANY($1::text[])"
#: Attempts at a batch whose ids turn out to be in ``requests`` already (each drops the ids it finds there).
_ATTEMPTS = 3

# A row holds "" for an absent text column (rowcodec.TEXT_COLUMNS); COPY writes what it is given, so _nulls
# makes those None. It names the positions, so it is checked against the layout here.
assert tuple(ROW_COLUMNS.index(c) for c in TEXT_COLUMNS) == (
    R_PROJECT, R_KEY, R_MODEL, R_REQUESTED, R_VENDOR, R_TAGS, R_REQUEST, R_RESPONSE) == (2, 3, 4, 5, 6, 12, 15, 16)


def _nulls(rows: list[Row]) -> list[Row]:
    """Rows as ``requests`` stores them: NULL, not "", for an absent text column (one tuple display per row)."""
    return [(rid, at, project or None, key or None, model or None, requested or None, vendor or None, status,
             cost, tin, tcache, tout, tags or None, inbound, stream, request or None, response or None, detail)
            for (rid, at, project, key, model, requested, vendor, status, cost, tin, tcache, tout, tags, inbound,
                 stream, request, response, detail) in rows]


def _unique(rows: list[Row], existing: set[str]) -> list[Row]:
    """The rows whose id is not in ``existing``, each id once (the first row carrying it)."""
    out: dict[str, Row] = {}
    for row in rows:
        rid = row[R_ID]
        if rid not in existing and rid not in out:
            out[rid] = row
    return list(out.values())


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
                                             timeout=self._timeout, command_timeout=30, reset=_keep_session)
            try:
                async with pool.acquire() as conn:
                    await migrate(conn)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
        return self._pool

    async def pool(self) -> asyncpg.Pool:
        """The pool, opened (and the schema migrated) on first use; shared with the stored responses."""
        return await self._get_pool()

    async def write(self, records: Sequence[Row | Mapping[str, Any]]) -> int:
        """COPY the rows into ``requests`` and upsert their rollups, in one transaction.

        A replayed batch (some ids already stored) fails the COPY on the primary key: the transaction is
        rolled back, the ids already there are dropped from the batch and the rest is written the same
        way. Returns the number of records inserted.
        """
        rows = as_rows(records)
        if not rows:
            return 0
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            try:
                for _ in range(_ATTEMPTS):
                    if not rows:
                        return 0
                    try:
                        async with conn.transaction():
                            await conn.copy_records_to_table("requests", records=_nulls(rows), columns=ROW_COLUMNS)
                            await conn.execute(_ROLLUP, orjson.dumps(rollup_deltas(rows)).decode())
                    except asyncpg.UniqueViolationError:
                        existing = {rid for (rid,) in await conn.fetch(_EXISTING, [row[R_ID] for row in rows])}
                        rows = _unique(rows, existing)
                        continue
                    return len(rows)
                raise RuntimeError(f"request log: ids of a batch kept appearing in the store ({_ATTEMPTS} attempts)")
            except BaseException:
                # A failed or cancelled write may leave the session mid-protocol: it goes, the next write
                # gets a fresh connection (the writer spills and replays this batch).
                conn.terminate()
                raise

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
