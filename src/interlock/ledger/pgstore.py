"""The request log in PostgreSQL (``store: postgresql://...``), for several gateways sharing one log.

A batch is written in one transaction of two statements: the rows
(``rowcodec.ROW_COLUMNS``, as built on the hot path, "" made NULL) are
``COPY``-ed straight into ``requests``, and the batch's rollups - summed in the
gateway as the SQLite store does (``schema.rollup_deltas``), one row per
day x project x key x model x vendor x tag, sent as one JSON array - are
upserted by one statement that also derives ``spend_dims`` from them and
upserts the hourly route rollup (``routes.route_deltas``, a second JSON array) and the hourly
usage rollup (``usage.usage_deltas``, a third). ``COPY`` inserts the heap tuples
several to a WAL record and evaluates nothing per row, which costs the server
about half of an ``INSERT ... SELECT ... ON CONFLICT`` from a staging table.
Writes stay idempotent: a batch replayed after an outage (committed just
before the connection dropped) fails the ``COPY`` on the primary key, and is
written again without the ids already stored, so nothing counts twice.
The pool and the migrations (``migrations.SCHEMA``, ``responses_store.SCHEMA``)
are the state layer's (``state.postgres``, ``state.migrations``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from interlock.ledger.migrations import SCHEMA
from interlock.ledger.responses_store import SCHEMA as RESPONSES_SCHEMA
from interlock.ledger.routes import SELECT_SQL, pg_routes_cte, route_deltas
from interlock.ledger.rowcodec import (
    R_CACHE_SAVED,
    R_GUARDRAIL,
    R_ID,
    R_KEY,
    R_MODEL,
    R_PROJECT,
    R_REQUEST,
    R_REQUESTED,
    R_RESPONSE,
    R_RESPONSE_CACHE,
    R_TAGS,
    R_VENDOR,
    ROW_COLUMNS,
    TEXT_COLUMNS,
    Row,
    as_rows,
    decode_row,
)
from interlock.ledger.schema import (
    MAX_KEYS,
    PG_READ_COLUMNS,
    LogQuery,
    SpendQuery,
    dollar,
    log_sql,
    pg_rollup_sql,
    rollup_deltas,
    spend_rows,
    spend_sql,
)
from interlock.ledger.usage import Read, pg_usage_cte, usage_deltas
from interlock.state.postgres import PgPool

#: The request log's version of the schema (``migrations.SCHEMA``'s last PostgreSQL migration).
SCHEMA_VERSION = SCHEMA.postgres_version

_SELECT = f"SELECT {', '.join(PG_READ_COLUMNS)} FROM requests"
_ROLLUP = pg_rollup_sql((pg_routes_cte("$2"), pg_usage_cte("$3")))
_ROUTE_HOURS = SELECT_SQL.format("$1", "$2")
_EXISTING = "SELECT id FROM requests WHERE id = ANY($1::text[])"
#: Attempts at a batch whose ids turn out to be in ``requests`` already (each drops the ids it finds there).
_ATTEMPTS = 3

# A row holds "" for an absent text column and cache saving (rowcodec.TEXT_COLUMNS); COPY writes what it is
# given, so _nulls makes those None. It names the positions, so it is checked against the layout here.
assert tuple(ROW_COLUMNS.index(c) for c in TEXT_COLUMNS) == (
    R_PROJECT, R_KEY, R_MODEL, R_REQUESTED, R_VENDOR, R_TAGS, R_REQUEST, R_RESPONSE, R_RESPONSE_CACHE,
    R_CACHE_SAVED, R_GUARDRAIL) == (2, 3, 4, 5, 6, 12, 15, 16, 17, 18, 19)


def _nulls(rows: list[Row]) -> list[Row]:
    """Rows as ``requests`` stores them: NULL, not "", for an absent text column (one tuple display per row)."""
    return [(rid, at, project or None, key or None, model or None, requested or None, vendor or None, status,
             cost, tin, tcache, tout, tags or None, inbound, stream, request or None, response or None,
             cache or None, None if saved == "" else saved, guard or None, detail)
            for (rid, at, project, key, model, requested, vendor, status, cost, tin, tcache, tout, tags, inbound,
                 stream, request, response, cache, saved, guard, detail) in rows]


def _unique(rows: list[Row], existing: set[str]) -> list[Row]:
    """The rows whose id is not in ``existing``, each id once (the first row carrying it)."""
    out: dict[str, Row] = {}
    for row in rows:
        rid = row[R_ID]
        if rid not in existing and rid not in out:
            out[rid] = row
    return list(out.values())


class PostgresLog:
    """The asynchronous log-store interface over an asyncpg pool."""

    kind = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 5.0) -> None:
        self.url = url
        self._timeout = timeout
        # The log never changes session state: released connections are not reset.
        self._pool = PgPool(url, (SCHEMA, RESPONSES_SCHEMA), min_size=min_size, max_size=max_size,
                            timeout=timeout, keep_session=True)

    async def _get_pool(self) -> asyncpg.Pool:
        return await self._pool.get()

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
                            await conn.execute(_ROLLUP, orjson.dumps(rollup_deltas(rows)).decode(),
                                               orjson.dumps(route_deltas(rows)).decode(),
                                               orjson.dumps(usage_deltas(rows)).decode())
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

    async def last_used(self, key_ids: Sequence[str]) -> dict[str, float]:
        """When each key last made a request: one indexed max per key (``requests_key``), no scan."""
        ids = list(dict.fromkeys(key_ids))[:MAX_KEYS]
        if not ids:
            return {}
        pool = await self._get_pool()
        rows = await pool.fetch("SELECT k, (SELECT max(received_at) FROM requests WHERE key_id = k) "
                                "FROM unnest($1::text[]) AS k", ids, timeout=self._timeout)
        return {str(r[0]): float(r[1]) for r in rows if r[1] is not None}

    async def spend(self, q: SpendQuery) -> list[dict[str, Any]]:
        sql, args = spend_sql(q, dollar, postgres=True)
        pool = await self._get_pool()
        return spend_rows(q.group_by, [tuple(r.values()) for r in await pool.fetch(sql, *args)])

    async def route_hours(self, model: str, since_hour: int) -> list[tuple[Any, ...]]:
        pool = await self._get_pool()
        return [tuple(r) for r in await pool.fetch(_ROUTE_HOURS, model, since_hour, timeout=self._timeout)]

    async def read_rollup(self, read: Read) -> list[tuple[Any, ...]]:
        """The rows of a rollup read (``usage``: the console's Overview and Spend)."""
        sql, args = read(dollar)
        pool = await self._get_pool()
        return [tuple(r) for r in await pool.fetch(sql, *args, timeout=self._timeout)]

    async def purge(self, before: float) -> int:
        pool = await self._get_pool()
        status = await pool.execute("DELETE FROM requests WHERE received_at < $1", before)
        return int(status.split()[-1])

    async def ping(self) -> None:
        pool = await self._get_pool()
        await pool.fetchval("SELECT 1", timeout=self._timeout)

    async def close(self) -> None:
        await self._pool.close()

