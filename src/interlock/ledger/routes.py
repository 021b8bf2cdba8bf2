"""The hourly route rollup, ``route_hourly``: requests, errors and tokens per (model, hour, vendor).

It answers the model page's "uptime and error rate over 1 h / 24 h / 7 d" and
"traffic through this gateway" with one small indexed read (the primary key
starts with the model), whatever the log's size. Like the spend rollups it is
summed per batch in the gateway (:func:`route_deltas`, one dict update per
row) and upserted in the transaction that inserts the batch. ``errors`` counts
status >= 400 (caller errors included), ``failures`` status >= 500 (the vendor
or the gateway failed: what counts against uptime). A request counts against
the route that answered or failed it last; attempts that failed over to
another route are not in it. Rows without a model (refused before routing)
are left out. Rollups hold no content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interlock.ledger.rowcodec import R_INPUT, R_MODEL, R_OUTPUT, R_RECEIVED, R_STATUS, R_VENDOR, Row

ROUTE_KEYS = ("model", "hour", "vendor")
ROUTE_VALUES = ("requests", "errors", "failures", "input_tokens", "output_tokens")
HOUR = 3600.0


def route_deltas(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    """Per (model, epoch hour, vendor) sums of a batch of rows, sorted (the order rows are locked in)."""
    acc: dict[tuple[Any, ...], list[int]] = {}
    get = acc.get
    for r in rows:
        model = r[R_MODEL]
        if not model:
            continue
        status = r[R_STATUS]
        key = (model, r[R_RECEIVED] // HOUR, r[R_VENDOR])
        v = get(key)
        if v is None:
            acc[key] = [1, int(status >= 400), int(status >= 500), r[R_INPUT] or 0, r[R_OUTPUT] or 0]
        else:
            v[0] += 1
            if status >= 400:
                v[1] += 1
                if status >= 500:
                    v[2] += 1
            v[3] += r[R_INPUT] or 0
            v[4] += r[R_OUTPUT] or 0
    return sorted((model, int(hour), vendor or "", *values) for (model, hour, vendor), values in acc.items())


def table_sql(integer: str) -> str:
    """``route_hourly``'s DDL; ``integer`` is the counters' type (SQLite INTEGER, PostgreSQL bigint)."""
    return (f"CREATE TABLE IF NOT EXISTS route_hourly (model TEXT NOT NULL, hour INTEGER NOT NULL, "
            f"vendor TEXT NOT NULL, {', '.join(f'{v} {integer} NOT NULL DEFAULT 0' for v in ROUTE_VALUES)}, "
            f"PRIMARY KEY ({', '.join(ROUTE_KEYS)}))")


def backfill_sql(hour_expr: str) -> str:
    """Fills ``route_hourly`` from the ``requests`` a log already holds (its migration)."""
    return (f"INSERT INTO route_hourly ({', '.join(ROUTE_KEYS + ROUTE_VALUES)}) "
            f"SELECT model, {hour_expr}, coalesce(vendor, ''), count(*), "
            "sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END), sum(CASE WHEN status >= 500 THEN 1 ELSE 0 END), "
            "sum(coalesce(input_tokens, 0)), sum(coalesce(output_tokens, 0)) FROM requests "
            f"WHERE model IS NOT NULL AND model <> '' GROUP BY model, {hour_expr}, coalesce(vendor, '')")


SQLITE_TABLE = table_sql("INTEGER") + " WITHOUT ROWID"
SQLITE_BACKFILL = backfill_sql("CAST(received_at / 3600 AS INTEGER)")
PG_TABLE = table_sql("bigint") + " WITH (fillfactor = 80)"
PG_BACKFILL = backfill_sql("floor(received_at / 3600)::integer")

#: SQLite: add one row of :func:`route_deltas` to ``route_hourly``.
SQLITE_UPSERT_ROUTES = (
    f"INSERT INTO route_hourly ({', '.join(ROUTE_KEYS + ROUTE_VALUES)}) "
    f"VALUES ({', '.join('?' for _ in ROUTE_KEYS + ROUTE_VALUES)}) "
    f"ON CONFLICT ({', '.join(ROUTE_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{v} = {v} + excluded.{v}" for v in ROUTE_VALUES)
)


def pg_routes_cte(param: str) -> str:
    """PostgreSQL: a CTE upserting :func:`route_deltas`' rows given as one JSON array in ``param``."""
    names = ROUTE_KEYS + ROUTE_VALUES
    fields = ", ".join(f"d->>{i} AS {n}" if n in ("model", "vendor") else f"(d->>{i})::bigint AS {n}"
                       for i, n in enumerate(names))
    return (f"routes AS (INSERT INTO route_hourly ({', '.join(names)}) "
            f"SELECT model, hour::integer, vendor, {', '.join(ROUTE_VALUES)} FROM "
            f"(SELECT {fields} FROM jsonb_array_elements({param}::jsonb) AS d) AS x "
            f"ORDER BY {', '.join(ROUTE_KEYS)} "
            f"ON CONFLICT ({', '.join(ROUTE_KEYS)}) DO UPDATE SET "
            + ", ".join(f"{v} = route_hourly.{v} + excluded.{v}" for v in ROUTE_VALUES) + ")")


#: One model's hours since an epoch hour: (hour, vendor, requests, errors, failures, input, output).
SELECT_SQL = (f"SELECT hour, vendor, {', '.join(ROUTE_VALUES)} FROM route_hourly "
              "WHERE model = {0} AND hour >= {1} ORDER BY hour, vendor")
