"""The request log in PostgreSQL (``store: postgresql://...``), for several gateways sharing one log.

Writes are one transaction per batch: ``COPY`` into a temporary staging table,
``INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING RETURNING id`` into
``requests`` (so a batch replayed after an outage counts nothing twice), and
one ``unnest`` upsert of the rollup deltas of the rows actually inserted.
Migrations are numbered, recorded in ``interlock_schema`` and applied under an
advisory lock, so gateways starting together apply each one exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncpg

from interlock.ledger.record import COLUMNS, JSON_COLUMNS
from interlock.ledger.schema import (
    DIM_KEYS,
    DIMS_TABLE_SQL,
    ROLLUP_KEYS,
    ROLLUP_VALUES,
    LogQuery,
    SpendQuery,
    decode_row,
    dim_deltas,
    dollar,
    encode_row,
    log_sql,
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
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_STAGE = "CREATE TEMP TABLE IF NOT EXISTS requests_stage (LIKE requests INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
_MOVE = (f"INSERT INTO requests ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM requests_stage "
         "ON CONFLICT (id) DO NOTHING RETURNING id")
_ROLLUP_TYPES = ("text",) * len(ROLLUP_KEYS) + ("bigint",) * len(ROLLUP_VALUES)
_UPSERT = (
    f"INSERT INTO spend_daily ({', '.join(ROLLUP_KEYS + ROLLUP_VALUES)}) SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_ROLLUP_TYPES))
    + f") ON CONFLICT ({', '.join(ROLLUP_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{v} = spend_daily.{v} + excluded.{v}" for v in ROLLUP_VALUES)
)

_DIM_TYPES = ("text",) * len(DIM_KEYS) + ("bigint",) * len(ROLLUP_VALUES)
_UPSERT_DIMS = (
    f"INSERT INTO spend_dims ({', '.join(DIM_KEYS + ROLLUP_VALUES)}) SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_DIM_TYPES))
    + f") ON CONFLICT ({', '.join(DIM_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{v} = spend_dims.{v} + excluded.{v}" for v in ROLLUP_VALUES)
)


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
                                             timeout=self._timeout, command_timeout=30)
            try:
                async with pool.acquire() as conn:
                    await migrate(conn)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
        return self._pool

    async def write(self, records: list[Mapping[str, Any]]) -> int:
        if not records:
            return 0
        by_id = {r["id"]: r for r in records}
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_STAGE)
            await conn.copy_records_to_table("requests_stage", records=[encode_row(r) for r in by_id.values()],
                                             columns=list(COLUMNS))
            inserted = {row["id"] for row in await conn.fetch(_MOVE)}
            deltas = rollup_deltas(r for rid, r in by_id.items() if rid in inserted)
            if deltas:
                await conn.execute(_UPSERT, *(list(col) for col in zip(*deltas, strict=True)))
                dims = dim_deltas(deltas)
                await conn.execute(_UPSERT_DIMS, *(list(col) for col in zip(*dims, strict=True)))
        return len(inserted)

    async def query(self, q: LogQuery) -> list[dict[str, Any]]:
        sql, args = log_sql(q, dollar, postgres=True)
        pool = await self._get_pool()
        rows = await pool.fetch(sql, *args)
        return [decode_row(COLUMNS, row.values()) for row in rows]

    async def get(self, rid: str) -> dict[str, Any] | None:
        pool = await self._get_pool()
        row = await pool.fetchrow(f"SELECT {', '.join(COLUMNS)} FROM requests WHERE id = $1", rid)
        return None if row is None else decode_row(COLUMNS, row.values())

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
