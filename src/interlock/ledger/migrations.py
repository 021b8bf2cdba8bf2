"""The request log's tables and their migrations (component ``ledger``), for SQLite and PostgreSQL.

``requests`` (one row per request), ``spend_daily``, ``spend_dims``,
``route_hourly`` and ``usage_hourly`` (the rollups) and, in SQLite, ``meta`` (gateway metadata such as the admin key's
digest). ``state.migrations`` runs them; the SQL is here because it follows the
row layout (``record.COLUMNS``, ``rowcodec``) and the rollups (``schema``).
Version numbers are the ones databases made before the shared runner recorded
(SQLite ``PRAGMA user_version``, PostgreSQL ``interlock_schema``); the step
that created ``responses`` there (SQLite 4, PostgreSQL 5) belongs to the
``responses`` component now (``responses_store.SCHEMA``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from interlock.ledger.record import CACHE_COLUMNS, COLUMNS, GUARDRAIL_ACTIONS, GUARDRAIL_COLUMN, JSON_COLUMNS
from interlock.ledger.routes import PG_BACKFILL, PG_TABLE, SQLITE_BACKFILL, SQLITE_TABLE
from interlock.ledger.rowcodec import DETAIL_FIELDS, decode_row, row_from_record
from interlock.ledger.schema import (
    DIMS_TABLE_SQL,
    ROLLUP_KEYS,
    ROLLUP_VALUES,
    dims_backfill_sql,
    rollup_deltas,
    sqlite_upsert,
)
from interlock.ledger.usage import PG_MIGRATION as USAGE_PG
from interlock.ledger.usage import SQLITE_MIGRATION as USAGE_SQLITE
from interlock.state.migrations import Schema, pg_table_version, sqlite_user_version

#: The rollups' values as the first migrations create them (``schema.ROLLUP_VALUES`` starts with these);
#: the response cache's (SQLite v6, PostgreSQL v7) are added by their own migration.
V1_ROLLUP_VALUES = ROLLUP_VALUES[:6]
#: Added to both rollup tables by SQLite v6 / PostgreSQL v7 (0 in the rows before).
CACHE_ROLLUP_VALUES = ROLLUP_VALUES[len(V1_ROLLUP_VALUES):]
assert CACHE_ROLLUP_VALUES == ("saved_picousd", "cache_hits")

# ----------------------------------------------------------------- SQLite

SQLITE_V1 = """
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
SQLITE_V2_COLUMNS = {
    "first_byte_at": "REAL", "done_at": "REAL", "output_tps": "REAL", "project": "TEXT", "key_id": "TEXT",
    "end_user": "TEXT", "tags": "TEXT", "cache_hit": "INTEGER NOT NULL DEFAULT 0", "attempts": "TEXT",
    "guardrails": "TEXT", "routing_trace": "TEXT", "content_level": "TEXT", "request_content": "TEXT",
    "response_content": "TEXT",
}

SQLITE_V2_TABLES = f"""
CREATE TABLE IF NOT EXISTS spend_daily (
    day TEXT NOT NULL, project TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL, vendor TEXT NOT NULL,
    tag TEXT NOT NULL,
    {', '.join(f'{v} INTEGER NOT NULL DEFAULT 0' for v in V1_ROLLUP_VALUES)},
    PRIMARY KEY ({', '.join(ROLLUP_KEYS)})
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spend_tag_day ON spend_daily (tag, day);
{DIMS_TABLE_SQL.format(values=', '.join(f'{v} INTEGER NOT NULL DEFAULT 0' for v in V1_ROLLUP_VALUES))} WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_project ON requests (project, received_at);
CREATE INDEX IF NOT EXISTS requests_key ON requests (key_id, received_at);
"""

#: v3: a record is written as a row (``rowcodec.ROW_COLUMNS``): the fields filters and rollups read in their
#: columns, the rest in one compact JSON array (``detail``); rows written before keep their columns.
SQLITE_V3 = "ALTER TABLE requests ADD COLUMN detail TEXT"
#: v5 (4 was the responses table's, see above: a legacy file at user_version 4 must not adopt this):
#: the hourly route rollup (``routes``), filled from the records already logged.
SQLITE_V5 = f"{SQLITE_TABLE}; {SQLITE_BACKFILL}"
#: v6: what the response cache did per request (``record.CACHE_COLUMNS``) and its savings in the rollups.
SQLITE_V6 = "; ".join(
    [f"ALTER TABLE requests ADD COLUMN {CACHE_COLUMNS[0]} TEXT",
     f"ALTER TABLE requests ADD COLUMN {CACHE_COLUMNS[1]} INTEGER"]
    + [f"ALTER TABLE {table} ADD COLUMN {v} INTEGER NOT NULL DEFAULT 0"
       for table in ("spend_daily", "spend_dims") for v in CACHE_ROLLUP_VALUES])

# v8 (PostgreSQL 9): the strongest guardrail action per request (``record.GUARDRAIL_COLUMN``), filled from
# the detections already logged (in ``detail``, or the ``guardrails`` column of rows written before it), and
# two partial indexes that hold only the requests something was detected in: the log's ``guardrail`` filter
# reads them, by action or any, newest first.
_GUARD_AT = 1 + DETAIL_FIELDS.index("guardrails")
_GUARD_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS requests_guardrail ON requests ({GUARDRAIL_COLUMN}, received_at) "
    f"WHERE {GUARDRAIL_COLUMN} IS NOT NULL; "
    f"CREATE INDEX IF NOT EXISTS requests_guardrail_any ON requests (received_at) "
    f"WHERE {GUARDRAIL_COLUMN} IS NOT NULL")


def _rank_sql(unchecked: str, action: str) -> str:
    """One detection's rank (1 = weakest, ``record.GUARDRAIL_ACTIONS``), as ``record.strongest_action`` ranks."""
    whens = " ".join(f"WHEN {action} = '{a}' THEN {i + 1}" for i, a in enumerate(GUARDRAIL_ACTIONS) if i)
    return f"CASE WHEN {unchecked} THEN 1 {whens} END"


def _action_sql(rank: str) -> str:
    return f"CASE {rank} " + " ".join(f"WHEN {i + 1} THEN '{a}'" for i, a in enumerate(GUARDRAIL_ACTIONS)) + " END"


SQLITE_V8 = (
    f"ALTER TABLE requests ADD COLUMN {GUARDRAIL_COLUMN} TEXT; "
    f"UPDATE requests SET {GUARDRAIL_COLUMN} = (SELECT "
    + _action_sql("max(" + _rank_sql("json_extract(g.value, '$.unchecked')", "json_extract(g.value, '$.action')")
                  + ")")
    + f" FROM json_each(CASE WHEN requests.detail IS NOT NULL THEN json_extract(requests.detail, '$[{_GUARD_AT}]')"
      " ELSE requests.guardrails END) AS g WHERE g.type = 'object') "
      "WHERE instr(coalesce(detail, guardrails), '\"detector\"') > 0 AND CASE WHEN json_valid(coalesce(detail, "
      f"guardrails)) THEN json_type(coalesce(json_extract(detail, '$[{_GUARD_AT}]'), guardrails)) END = 'array'; "
    + _GUARD_INDEXES)
_PG_GUARDS = (f"(CASE WHEN coalesce(detail, detail_json::text) IS NOT NULL "
              f"THEN (coalesce(detail, detail_json::text))::jsonb -> {_GUARD_AT} ELSE guardrails END)")
POSTGRES_V9 = (
    f"ALTER TABLE requests ADD COLUMN {GUARDRAIL_COLUMN} text; "
    f"UPDATE requests SET {GUARDRAIL_COLUMN} = (SELECT "
    + _action_sql("max(" + _rank_sql("coalesce(g ->> 'unchecked' = 'true', false)", "g ->> 'action'") + ")")
    + f" FROM jsonb_array_elements(CASE WHEN jsonb_typeof({_PG_GUARDS}) = 'array' THEN {_PG_GUARDS} "
      "ELSE '[]'::jsonb END) AS g WHERE jsonb_typeof(g) = 'object') "
      "WHERE coalesce(detail, detail_json::text, guardrails::text) LIKE '%\"detector\"%'; "
    + _GUARD_INDEXES)

_V2_UPSERT_ROLLUP = sqlite_upsert("spend_daily", ROLLUP_KEYS, V1_ROLLUP_VALUES)
_V1_WIDTH = len(ROLLUP_KEYS) + len(V1_ROLLUP_VALUES)


def _sqlite_v2(conn: sqlite3.Connection) -> None:
    """The v2 columns and the rollup tables; records logged before enter the rollups once."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    for column, decl in SQLITE_V2_COLUMNS.items():
        if column not in have:
            conn.execute(f"ALTER TABLE requests ADD COLUMN {column} {decl}")
    for statement in SQLITE_V2_TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)
    cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM requests")
    no_cache = (None,) * len(CACHE_COLUMNS)
    while rows := cur.fetchmany(5000):
        records = [row_from_record(decode_row((*row, *no_cache, None))) for row in rows]
        conn.executemany(_V2_UPSERT_ROLLUP, [d[:_V1_WIDTH] for d in rollup_deltas(records)])
    for statement in dims_backfill_sql(V1_ROLLUP_VALUES):
        conn.execute(statement)


# ----------------------------------------------------------------- PostgreSQL

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


POSTGRES: tuple[tuple[int, str], ...] = (
    (1, f"""
CREATE TABLE IF NOT EXISTS requests ({', '.join(f'{c} {_column_type(c)}' for c in COLUMNS)});
CREATE INDEX IF NOT EXISTS requests_received ON requests (received_at, id);
CREATE INDEX IF NOT EXISTS requests_project ON requests (project, received_at);
CREATE INDEX IF NOT EXISTS requests_key ON requests (key_id, received_at);
CREATE TABLE IF NOT EXISTS spend_daily (
    day text NOT NULL, project text NOT NULL, key_id text NOT NULL, model text NOT NULL, vendor text NOT NULL,
    tag text NOT NULL,
    {', '.join(f'{v} bigint NOT NULL DEFAULT 0' for v in V1_ROLLUP_VALUES)},
    PRIMARY KEY ({', '.join(ROLLUP_KEYS)})
);
CREATE INDEX IF NOT EXISTS spend_tag_day ON spend_daily (tag, day);
{DIMS_TABLE_SQL.format(values=', '.join(f'{v} bigint NOT NULL DEFAULT 0' for v in V1_ROLLUP_VALUES))};
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
    # The hourly route rollup (``routes``), filled from the records already logged. Version 6: 5 was the
    # responses table's in ``interlock_schema``, which a legacy database adopts up to.
    (6, f"{PG_TABLE}; {PG_BACKFILL}"),
    # What the response cache did per request (record.CACHE_COLUMNS) and its savings in the rollups. Adding
    # a column with a constant default rewrites nothing.
    (7, f"ALTER TABLE requests ADD COLUMN {CACHE_COLUMNS[0]} text, ADD COLUMN {CACHE_COLUMNS[1]} bigint; "
        + "; ".join(f"ALTER TABLE {table} "
                    + ", ".join(f"ADD COLUMN {v} bigint NOT NULL DEFAULT 0" for v in CACHE_ROLLUP_VALUES)
                    for table in ("spend_daily", "spend_dims"))),
    # The hourly usage rollup (``usage``: the console's Overview), filled from the records already logged.
    (8, USAGE_PG),
    (9, POSTGRES_V9),
)


async def _pg_legacy(conn: Any) -> int:
    return await pg_table_version(conn, "interlock_schema")


SCHEMA = Schema(
    "ledger",
    sqlite=((1, SQLITE_V1), (2, _sqlite_v2), (3, SQLITE_V3), (5, SQLITE_V5), (6, SQLITE_V6),
            # v7: the hourly usage rollup (``usage``, the console's Overview), filled from the records logged.
            (7, USAGE_SQLITE), (8, SQLITE_V8)),
    postgres=POSTGRES,
    sqlite_legacy=sqlite_user_version,
    postgres_legacy=_pg_legacy,
)
