"""Logs written before the row format: databases at the previous schema and older spill files.

A database from before ``detail`` existed (SQLite v2, PostgreSQL v1) upgrades
in place - one added column, no rewrite - and its old records read back as
they were written, side by side with new rows; spill files holding record
objects (the previous format) still replay.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from interlock.core.responses import ADMIN, Owner, StoredResponse
from interlock.ledger import migrations, pgstore, store
from interlock.ledger.migrations import V1_ROLLUP_VALUES
from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.record import CACHE_COLUMNS, COLUMNS, DETAIL_VERSION, GUARDRAIL_COLUMN, JSON_COLUMNS
from interlock.ledger.responses_store import SQLiteResponses
from interlock.ledger.rowcodec import ROW_COLUMNS, row_from_record, row_record
from interlock.ledger.schema import ROLLUP_KEYS, LogQuery, SpendQuery
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.writer import LedgerWriter, SpillFile
from tests.pg_util import create_database, drop_database, url

T0 = 1_750_000_000.0  # 2025-06-15

#: A record as the previous version stored it: every field in its own column.
OLD: dict[str, Any] = {
    "id": "req_old", "received_at": T0, "first_byte_at": T0 + 0.1, "done_at": T0 + 0.5, "duration_ms": 500.0,
    "ttft_ms": 100.0, "output_tps": 12.5, "project": "alpha", "key_id": "key_a", "end_user": "u1",
    "tags": ["t1"], "inbound": "openai.chat", "requested_model": "fast", "model": "openai/gpt-4.1-mini",
    "vendor": "openai", "vendor_model": "gpt-4.1-mini", "stream": 0, "status": 200, "error_type": None,
    "error_message": None, "input_tokens": 10, "cache_read_tokens": 0, "cache_write_tokens": 0,
    "output_tokens": 5, "reasoning_tokens": 0, "cost_picousd": 42_000, "cost_estimated": 0, "cache_hit": 0,
    "simulated": 0, "attempts": [{"target": "openai/gpt-4.1-mini", "vendor": "openai", "model": "m",
                                  "outcome": "answered", "status": 200, "latency_ms": 90.0}],
    # Detected before the guardrail column: the upgrade reads the strongest action from here (redact; a
    # detector that failed open counts as unchecked, whatever its action).
    "guardrails": [{"detector": "pii", "action": "redact", "score": 1.0, "entities": {"EMAIL_ADDRESS": 1}},
                   {"detector": "prompt_injection", "action": "block", "score": 0.0, "unchecked": True}],
    "explanation": "the only capable target (fast)",
    "routing_trace": {"requested": "fast", "reason": "the only capable target", "candidates": []},
    "content_level": "full", "request_content": {"messages": [{"role": "user", "content": "old needle"}]},
    "response_content": "an answer",
}
NEW: dict[str, Any] = {"id": "req_new", "received_at": T0 + 60, "inbound": "openai.chat", "status": 502,
                       "project": "alpha", "key_id": "key_a", "model": "openai/gpt-4.1-mini", "vendor": "openai",
                       "cost_picousd": 1_000, "input_tokens": 3, "output_tokens": 0, "tags": ["t1"],
                       "content_level": "metadata"}


#: route_hourly after the upgrade and NEW: (hour, vendor, requests, errors, failures, input, output).
ROUTE_HOUR = [(int(T0 // 3600), "openai", 2, 1, 1, 13, 5)]


def old_values() -> list[Any]:
    return [orjson.dumps(OLD[c]).decode() if c in JSON_COLUMNS and OLD[c] is not None else OLD[c]
            for c in COLUMNS]


def old_rollups() -> list[tuple[str, ...]]:
    """spend_daily / spend_dims rows of OLD, as the previous writer left them."""
    values = "1, 0, 10, 0, 5, 42000"
    return [f"INSERT INTO spend_daily ({', '.join(ROLLUP_KEYS + V1_ROLLUP_VALUES)}) VALUES "
            f"('2025-06-15', 'alpha', 'key_a', 'openai/gpt-4.1-mini', 'openai', '{tag}', {values})"
            for tag in ("*", "t1")] + [
        f"INSERT INTO spend_dims (day, dim, value, {', '.join(V1_ROLLUP_VALUES)}) VALUES "
        f"('2025-06-15', '{dim}', '{value}', {values})"
        for dim, value in (("*", "*"), ("project", "alpha"), ("key_id", "key_a"),
                           ("model", "openai/gpt-4.1-mini"), ("vendor", "openai"), ("tag", "t1"))]


def v2_database(path: Path) -> None:
    """An interlock.db exactly as schema v2 left it, holding OLD and its rollups."""
    with sqlite3.connect(path) as conn:
        conn.executescript(migrations.SQLITE_V1)
        for column, decl in migrations.SQLITE_V2_COLUMNS.items():
            conn.execute(f"ALTER TABLE requests ADD COLUMN {column} {decl}")
        conn.executescript(migrations.SQLITE_V2_TABLES)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                     old_values())
        for sql in old_rollups():
            conn.execute(sql)


def check_upgraded(old: dict[str, Any] | None, rows: list[dict[str, Any]], spend: list[dict[str, Any]]) -> None:
    assert old is not None
    # Written before the response cache's columns: nothing is known of it.
    cache = {"response_cache": None, "cache_saved_picousd": None, "cache_saved_usd": None}
    assert {k: v for k, v in old.items() if k != "cost_usd" and k not in cache} == OLD
    assert old["cost_usd"] == 42_000 / 1e12 and {k: old[k] for k in cache} == cache
    assert [r["id"] for r in rows] == ["req_new", "req_old"]
    assert rows[1] == old and rows[0]["status"] == 502 and rows[0]["tags"] == ["t1"]
    assert [(r["day"], r["requests"], r["errors"], r["cost_picousd"], r["saved_picousd"], r["cache_hits"])
            for r in spend] == [("2025-06-15", 2, 1, 43_000, 0, 0)]


async def check_guardrail_filter(log: Any) -> None:
    """The upgrade filled the guardrail column from OLD's detections; NEW had none."""
    for action, ids in (("redact", ["req_old"]), ("any", ["req_old"]), ("block", []), ("unchecked", [])):
        assert [r["id"] for r in await log.query(LogQuery(guardrail=action))] == ids, action


async def test_sqlite_v2_database_upgrades_in_place(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    v2_database(db)
    sqlite = SQLiteStore(db)
    try:
        assert sqlite.schema_version() == store.SCHEMA_VERSION == 8
        log = SQLiteLog(sqlite)
        assert await log.write([NEW]) == 1
        check_upgraded(await log.get("req_old"), await log.query(LogQuery()), await log.spend(SpendQuery()))
        await check_guardrail_filter(log)
        # OLD entered the hourly route rollup when it was created (backfill), NEW when it was written.
        assert await log.route_hours("openai/gpt-4.1-mini", 0) == ROUTE_HOUR
        assert [r["id"] for r in await log.query(LogQuery(text="old needle"))] == ["req_old"]
        assert [r["id"] for r in await log.query(LogQuery(tag="t1", status="error"))] == ["req_new"]
        by_tag = await log.spend(SpendQuery(group_by="tag"))
        assert [(r["tag"], r["requests"]) for r in by_tag] == [("t1", 2)]
    finally:
        sqlite.close()
    again = SQLiteStore(db)  # nothing is applied twice
    try:
        assert again.schema_version() == 8 and len(again.query_logs(LogQuery())) == 2
    finally:
        again.close()


#: The responses table as interlock created it before responses carried a project.
V3_RESPONSES = """
CREATE TABLE responses (id TEXT PRIMARY KEY, created_at REAL NOT NULL, model TEXT, owner TEXT,
    previous_response_id TEXT, response BLOB NOT NULL, input_items BLOB NOT NULL, conversation BLOB NOT NULL);
CREATE INDEX responses_created ON responses (created_at);
"""


async def test_sqlite_v3_stored_responses_gain_a_project_and_stay_the_admins(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    v2_database(db)
    with sqlite3.connect(db) as conn:
        conn.executescript(migrations.SQLITE_V3 + ";" + V3_RESPONSES)
        conn.execute("INSERT INTO responses VALUES ('resp_old', 1.0, 'm', 'ik-abc', NULL, '{}', '[]', '[]')")
        conn.execute("PRAGMA user_version = 3")
    sqlite = SQLiteStore(db)
    try:
        assert sqlite.schema_version() == 8 and sqlite.db.recorded()["responses"] == 1
    finally:
        sqlite.close()
    responses = SQLiteResponses(db)
    try:
        assert (await responses.get("resp_old", ADMIN)) is not None
        assert await responses.get("resp_old", Owner("alpha")) is None
        responses.put_sync(StoredResponse(id="resp_new", model="m", owner=None, previous_response_id=None,
                                          response={}, input_items=[], conversation=[], project="alpha"))
        assert (await responses.get("resp_new", Owner("alpha"))) is not None
    finally:
        responses.close()


@pytest.fixture
def pg_name() -> Iterator[str]:
    name = create_database()
    yield name
    drop_database(name)


async def test_postgres_v1_database_upgrades_in_place(pg_name: str) -> None:
    conn = await asyncpg.connect(url(pg_name))
    try:  # the schema as the previous version's migration 1 left it, holding OLD and its rollups
        await conn.execute("CREATE TABLE interlock_schema "
                           "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        await conn.execute(migrations.POSTGRES[0][1])
        await conn.execute("INSERT INTO interlock_schema (version) VALUES (1)")
        await conn.execute(f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES "
                           f"({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))})", *old_values())
        for sql in old_rollups():
            await conn.execute(sql)
    finally:
        await conn.close()
    log = PostgresLog(url(pg_name))
    try:
        assert await log.write([NEW]) == 1
        check_upgraded(await log.get("req_old"), await log.query(LogQuery()), await log.spend(SpendQuery()))
        await check_guardrail_filter(log)
        assert await log.route_hours("openai/gpt-4.1-mini", 0) == ROUTE_HOUR
        conn = await asyncpg.connect(url(pg_name))
        try:
            versions = [tuple(r) for r in await conn.fetch("SELECT component, version FROM schema_migrations "
                                                            "ORDER BY 1, 2")]
            legacy = [r["version"] for r in await conn.fetch("SELECT version FROM interlock_schema")]
        finally:
            await conn.close()
        # Version 1 was adopted from interlock_schema, which is left as it was; the rest were applied.
        assert versions == [("ledger", 1), ("ledger", 2), ("ledger", 3), ("ledger", 4), ("ledger", 6),
                            ("ledger", 7), ("ledger", 8), ("ledger", 9), ("responses", 1)]
        assert pgstore.SCHEMA_VERSION == 9 and legacy == [1]
    finally:
        await log.close()


async def test_postgres_v2_rows_keep_their_json_detail(pg_name: str) -> None:
    """Rows written at schema v2 (``detail`` json, now ``detail_json``) read back beside rows written after."""
    mid = row_from_record({**OLD, "id": "req_mid", "received_at": T0 + 30})
    conn = await asyncpg.connect(url(pg_name))
    try:  # the schema as migrations 1 and 2 left it, holding a row written by that version
        await conn.execute("CREATE TABLE interlock_schema "
                           "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        for version, sql in migrations.POSTGRES[:2]:
            await conn.execute(sql)
            await conn.execute("INSERT INTO interlock_schema (version) VALUES ($1)", version)
        types = {"tags": "::jsonb", "request_content": "::jsonb", "response_content": "::jsonb", "detail": "::json"}
        # That version's row had no response cache columns.
        columns = [c for c in ROW_COLUMNS if c not in (*CACHE_COLUMNS, GUARDRAIL_COLUMN)]
        params = ", ".join(f"${i + 1}{types.get(c, '')}" for i, c in enumerate(columns))
        await conn.execute(f"INSERT INTO requests ({', '.join(columns)}) VALUES ({params})",
                           *(None if v == "" else v for c, v in zip(ROW_COLUMNS, mid, strict=True)
                             if c in columns))
    finally:
        await conn.close()
    log = PostgresLog(url(pg_name))
    try:
        assert await log.write([NEW]) == 1
        expected = row_record(mid)
        assert await log.get("req_mid") == expected
        rows = await log.query(LogQuery())
        assert [r["id"] for r in rows] == ["req_new", "req_mid"] and rows[1] == expected
        assert rows[0] == await log.get("req_new") and rows[0]["status"] == 502
        conn = await asyncpg.connect(url(pg_name))
        try:
            stored = await conn.fetchrow("SELECT detail, detail_json FROM requests WHERE id = 'req_new'")
        finally:
            await conn.close()
        assert stored["detail_json"] is None and orjson.loads(stored["detail"])[0] == DETAIL_VERSION
    finally:
        await log.close()


async def test_spill_files_of_both_formats_replay(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    # The previous version spilled record objects, one per line.
    (spill_dir / f"{dead.pid}.jsonl").write_bytes(orjson.dumps(OLD) + b"\n")
    mine = SpillFile(spill_dir)
    mine.append([NEW])
    assert [row[0] for row in SpillFile.read(mine.path)] == ["req_new"]
    sqlite = SQLiteStore(tmp_path / "interlock.db")
    try:
        writer = LedgerWriter(SQLiteLog(sqlite), SpillFile(spill_dir), interval=0.05)
        writer.start()
        assert not writer.store_up
        for _ in range(100):
            await asyncio.sleep(0.02)
            if writer.store_up:
                break
        await writer.drain()
        assert writer.replayed == 2 and not list(spill_dir.glob("*.jsonl"))
        replayed = sqlite.get_log("req_old")
        assert replayed is not None
        for key, value in OLD.items():
            assert replayed[key] == value or (key == "first_byte_at" and replayed[key] == pytest.approx(value)), key
        assert sqlite.get_log("req_new") is not None
    finally:
        sqlite.close()
