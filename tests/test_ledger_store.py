"""The request log stores (SQLite and a real PostgreSQL): migrations, idempotent writes, queries, rollups."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from interlock.ledger import migrations
from interlock.ledger.pgstore import SCHEMA_VERSION as PG_SCHEMA_VERSION
from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.schema import LogQuery, SpendQuery, encode_cursor
from interlock.ledger.store import SCHEMA_VERSION, SQLiteStore
from interlock.ledger.writer import LogStore

DAY = 86400.0
T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC


@pytest.fixture
def store(log_store: LogStore) -> LogStore:
    return log_store


def rec(i: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": f"req_{i:06d}", "received_at": T0 + i, "done_at": T0 + i + 0.5, "duration_ms": 500.0, "ttft_ms": 80.0,
        "project": "alpha" if i % 2 == 0 else "beta", "key_id": f"key{i % 3}", "inbound": "openai-chat",
        "requested_model": "m", "model": "openai/gpt-4.1-mini", "vendor": "openai", "vendor_model": "gpt-4.1-mini",
        "stream": 0, "status": 200, "input_tokens": 10, "output_tokens": 5, "cost_picousd": 1_000_000, "tags": None,
        "content_level": "metadata",
    }
    base.update(extra)
    return base


async def test_write_is_idempotent_and_rollups_count_once(store: LogStore) -> None:
    batch = [rec(i) for i in range(10)]
    assert await store.write(batch) == 10
    # A replay of the same batch (plus one new record) adds only the new one.
    assert await store.write([*batch, rec(10)]) == 1
    rows = await store.spend(SpendQuery(group_by="day"))
    assert rows == [{"day": "2025-06-15", "requests": 11, "errors": 0, "input_tokens": 110, "cache_read_tokens": 0,
                     "output_tokens": 55, "cost_picousd": 11_000_000, "saved_picousd": 0, "cache_hits": 0,
                     "cost_usd": pytest.approx(11e-6), "saved_usd": 0.0}]


async def test_an_id_twice_in_a_batch_and_ids_already_stored_count_once(store: LogStore) -> None:
    assert await store.write([rec(0), rec(1, tags=["t"])]) == 2
    # A replayed batch mixing stored ids, new ones and a new id twice (the first of the two is kept).
    batch = [rec(2, tags=["t"]), rec(0), rec(3, cost_picousd=5), rec(2, cost_picousd=7), rec(1, tags=["t"])]
    assert await store.write(batch) == 2
    assert await store.write(batch) == 0
    day = await store.spend(SpendQuery(group_by="day"))
    assert [(r["requests"], r["cost_picousd"]) for r in day] == [(4, 3_000_005)]
    assert [(r["tag"], r["requests"]) for r in await store.spend(SpendQuery(group_by="tag"))] == [("t", 2)]
    assert (await store.get("req_000002") or {})["cost_picousd"] == 1_000_000


async def test_spend_groups_and_tags(store: LogStore) -> None:
    await store.write([
        rec(0, tags=["team-a", "exp"]), rec(1, tags=["team-a"]), rec(2, status=500, cost_picousd=None),
        rec(3, received_at=T0 + DAY, vendor="azure", cost_picousd=3_000_000),
    ])
    by_project = await store.spend(SpendQuery(group_by="project"))
    assert [(r["project"], r["requests"], r["errors"], r["cost_picousd"]) for r in by_project] == [
        ("alpha", 2, 1, 1_000_000), ("beta", 2, 0, 4_000_000)]
    by_tag = await store.spend(SpendQuery(group_by="tag"))
    assert [(r["tag"], r["requests"]) for r in by_tag] == [("exp", 1), ("team-a", 2)]
    by_vendor = await store.spend(SpendQuery(group_by="vendor", since="2025-06-16", until="2025-06-16"))
    assert [(r["vendor"], r["requests"]) for r in by_vendor] == [("azure", 1)]
    by_key = await store.spend(SpendQuery(group_by="key", project="alpha"))
    assert [(r["key"], r["requests"]) for r in by_key] == [("key0", 1), ("key2", 1)]


async def test_log_filters_and_cursor_pagination(store: LogStore) -> None:
    await store.write([
        rec(i, status=502 if i % 5 == 0 else 200, tags=["t1"] if i < 3 else None,
            request_content={"messages": [{"role": "user", "content": f"needle {i}"}]} if i == 7 else None,
            cost_picousd=i * 1_000_000)
        for i in range(25)
    ])
    errors = await store.query(LogQuery(status="error", limit=100))
    assert [r["id"] for r in errors] == [f"req_{i:06d}" for i in (20, 15, 10, 5, 0)]
    assert [r["id"] for r in await store.query(LogQuery(tag="t1"))] == ["req_000002", "req_000001", "req_000000"]
    assert [r["id"] for r in await store.query(LogQuery(text="needle"))] == ["req_000007"]
    assert len(await store.query(LogQuery(min_cost_picousd=20_000_000))) == 5
    ranged = await store.query(LogQuery(min_cost_picousd=3_000_000, max_cost_picousd=5_000_000))
    assert [r["id"] for r in ranged] == ["req_000005", "req_000004", "req_000003"]
    assert len(await store.query(LogQuery(project="alpha", status="ok", limit=100))) == 10
    assert len(await store.query(LogQuery(since=T0 + 10, until=T0 + 20))) == 10
    # Pages of 10 with the cursor cover everything once, newest first.
    seen: list[str] = []
    q = LogQuery(limit=10)
    while rows := await store.query(q):
        seen.extend(r["id"] for r in rows)
        q = LogQuery(limit=10, cursor=(rows[-1]["received_at"], rows[-1]["id"]))
    assert seen == [f"req_{i:06d}" for i in range(24, -1, -1)]
    one = await store.get("req_000007")
    assert one is not None and one["request_content"]["messages"][0]["content"] == "needle 7"
    assert one["cost_usd"] == pytest.approx(7e-6)
    assert await store.get("req_nope") is None
    assert encode_cursor(1.5, "x")  # opaque, but round-trips through the API tests


async def test_purge_keeps_rollups(store: LogStore) -> None:
    await store.write([rec(i, received_at=T0 - 40 * DAY + i) for i in range(5)] + [rec(100)])
    assert await store.purge(T0 - 30 * DAY) == 5
    assert [r["id"] for r in await store.query(LogQuery())] == ["req_000100"]
    total = sum(r["requests"] for r in await store.spend(SpendQuery(group_by="day")))
    assert total == 6


def test_sqlite_migrates_a_v1_database_and_keeps_meta(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE requests (id TEXT PRIMARY KEY, received_at REAL NOT NULL, duration_ms REAL, ttft_ms REAL,
              inbound TEXT NOT NULL, requested_model TEXT, model TEXT, vendor TEXT, vendor_model TEXT,
              stream INTEGER NOT NULL, status INTEGER NOT NULL, error_type TEXT, error_message TEXT,
              input_tokens INTEGER, cache_read_tokens INTEGER, cache_write_tokens INTEGER, output_tokens INTEGER,
              reasoning_tokens INTEGER, cost_picousd INTEGER, cost_estimated INTEGER NOT NULL DEFAULT 0,
              simulated INTEGER NOT NULL DEFAULT 0, explanation TEXT);
            INSERT INTO meta VALUES ('master_key_digest', 'abc');
        """)
        conn.execute("INSERT INTO requests (id, received_at, inbound, model, vendor, stream, status, cost_picousd) "
                     "VALUES ('req_old', ?, 'openai-chat', 'm', 'v', 0, 200, 42)", (T0,))
    store = SQLiteStore(db)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.get_meta("master_key_digest") == "abc"
        old = store.get_log("req_old")
        assert old is not None and old["project"] is None and old["attempts"] is None
        assert store.spend(SpendQuery())[0]["cost_picousd"] == 42
    finally:
        store.close()
    # Opening again applies nothing twice.
    again = SQLiteStore(db)
    try:
        assert again.spend(SpendQuery())[0]["requests"] == 1
    finally:
        again.close()


async def test_postgres_migrations_are_recorded_once(pg_url: str) -> None:
    first, second = PostgresLog(pg_url), PostgresLog(pg_url)
    try:
        await first.ping()
        await second.ping()
        conn = await asyncpg.connect(pg_url)
        try:
            versions = [r["version"] for r in await conn.fetch(
                "SELECT version FROM schema_migrations WHERE component = 'ledger' ORDER BY version")]
        finally:
            await conn.close()
        assert versions == [v for v, _ in migrations.POSTGRES] and versions[-1] == PG_SCHEMA_VERSION
    finally:
        await first.close()
        await second.close()


async def test_concurrent_postgres_writers_do_not_deadlock(pg_url: str) -> None:
    """Several gateways write overlapping rollup rows at once (rows locked in one order)."""
    import asyncio
    import random

    rnd = random.Random(3)
    batches = []
    for b in range(8):
        batch = [rec(b * 1000 + i, project=f"p{rnd.randrange(5)}", key_id=f"k{rnd.randrange(5)}",
                     tags=[f"t{rnd.randrange(3)}"]) for i in range(400)]
        rnd.shuffle(batch)
        batches.append(batch)
    stores = [PostgresLog(pg_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(stores[i % 4].write(batch) for i, batch in enumerate(batches)))
        assert sum(results) == 3200
        rows = await stores[0].spend(SpendQuery(group_by="project"))
        assert sum(r["requests"] for r in rows) == 3200
    finally:
        for s in stores:
            await s.close()


async def test_postgres_session_keeps_nothing_between_batches(pg_url: str) -> None:
    """A long-lived connection's temporary tables stay empty: rows staged by one batch are gone after it
    (deleted rows in a temporary table are never vacuumed, so a session that deleted them would grow)."""
    store = PostgresLog(pg_url, min_size=1, max_size=1)
    try:
        for b in range(5):
            assert await store.write([rec(b * 1000 + i) for i in range(300)]) == 300
        pool = await store._get_pool()
        size = await pool.fetchval(
            "SELECT coalesce(sum(pg_relation_size(oid)), 0) FROM pg_class "
            "WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'")
        assert size == 0
        assert (await store.spend(SpendQuery()))[0]["requests"] == 1500
    finally:
        await store.close()


async def test_last_used_reads_each_keys_newest_request(store: LogStore) -> None:
    await store.write([rec(i) for i in range(9)])  # key0: 0, 3, 6; key1: 1, 4, 7; key2: 2, 5, 8
    used = await store.last_used(["key0", "key2", "nobody", "key0"])
    assert used == {"key0": T0 + 6, "key2": T0 + 8}
    assert await store.last_used([]) == {}
