"""The state layer's migration runner: fresh databases, databases made before it, re-runs, races, failures.

``tests/data/legacy_state_*.sql`` are databases made by interlock before the
state layer (their headers say how): the first run adopts the versions they
recorded in their own bookkeeping instead of applying those migrations again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from interlock.core.responses import ADMIN, Owner
from interlock.governance import schema as gov_schema
from interlock.governance.model import Project
from interlock.governance.store import PostgresGovStore, SQLiteGovStore
from interlock.ledger import migrations as ledger_migrations
from interlock.ledger import responses_store
from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.responses_store import PostgresResponses, SQLiteResponses
from interlock.ledger.schema import LogQuery, SpendQuery
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.state.migrations import (
    MigrationError,
    Schema,
    migrate_postgres,
    migrate_sqlite,
    postgres_versions,
    sqlite_versions,
)
from interlock.state.sqlite import connect
from tests.pg_util import create_database, drop_database, url

DATA = Path(__file__).parent / "data"
NEW = {"id": "req_new", "received_at": 1_750_000_120.0, "inbound": "openai.chat", "status": 200,
       "project": "legacy", "key_id": "key_l", "model": "openai/gpt-4.1-mini", "vendor": "openai",
       "cost_picousd": 7, "content_level": "metadata"}
ALL = {"ledger": ledger_migrations.SCHEMA.sqlite_version, "responses": 1,
       "governance": gov_schema.SCHEMA_VERSION}


def rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


@pytest.fixture
def pg_name() -> Iterator[str]:
    name = create_database()
    yield name
    drop_database(name)


@pytest.fixture
async def pg_conn(pg_name: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(url(pg_name))
    try:
        yield conn
    finally:
        await conn.close()


# ----------------------------------------------------------------- the stores on a fresh database


async def test_a_fresh_sqlite_file_gets_every_component(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    store, gov, responses = SQLiteStore(db), SQLiteGovStore(db), SQLiteResponses(db)
    try:
        with connect(db) as conn:
            assert sqlite_versions(conn) == ALL
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 0  # the old bookkeeping is not written
            assert rows(conn, "SELECT name FROM sqlite_master WHERE name IN ('interlock_schema', "
                              "'governance_schema')") == []
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.schema_version() == ledger_migrations.SCHEMA.sqlite_version
        assert gov.migrate() == gov_schema.SCHEMA_VERSION  # again: nothing to do
        assert await SQLiteLog(store).write([NEW]) == 1
    finally:
        store.close()
        await gov.close()
        responses.close()


async def test_a_fresh_postgresql_database_gets_every_component(pg_name: str, pg_conn: Any) -> None:
    log, gov = PostgresLog(url(pg_name)), PostgresGovStore(url(pg_name))
    try:
        await asyncio.gather(log.ping(), gov.version())
        assert await postgres_versions(pg_conn) == {"ledger": ledger_migrations.SCHEMA.postgres_version,
                                                   "responses": 1, "governance": gov_schema.SCHEMA_VERSION}
        assert await pg_conn.fetchval("SELECT to_regclass('interlock_schema')") is None
        assert await log.write([NEW]) == 1
    finally:
        await log.close()
        await gov.close()


# ----------------------------------------------------------------- databases made before the state layer


def legacy_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript((DATA / "legacy_state_sqlite.sql").read_text())
    sqlite3.connect(path).close()


def check_legacy_log(got: list[dict[str, Any]], spend: list[dict[str, Any]]) -> None:
    assert [r["id"] for r in got] == ["req_new", "req_legacy_2", "req_legacy_1"]
    # The rollups were not rebuilt from the log (that would count the old records twice).
    assert [(r["requests"], r["errors"], r["cost_picousd"]) for r in spend] == [(3, 1, 43_007)]


async def test_a_sqlite_file_made_before_the_state_layer_is_adopted_not_remigrated(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    legacy_sqlite(db)
    store, gov, responses = SQLiteStore(db), SQLiteGovStore(db), SQLiteResponses(db)
    try:
        with connect(db) as conn:
            assert sqlite_versions(conn) == ALL
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 4  # read, left as it was
            assert rows(conn, "SELECT version FROM governance_schema") == [(1,), (2,)]
        assert store.get_meta("master_key_digest") == "legacy-digest"
        log = SQLiteLog(store)
        assert await log.write([NEW]) == 1
        check_legacy_log(await log.query(LogQuery()), await log.spend(SpendQuery()))
        defs = await gov.load()
        assert defs.version == 2 and list(defs.projects) == ["legacy"]
        assert await gov.spend(["2025-06"]) == {("bud_l", "", "2025-06"): 5}
        await gov.add_project(Project("new", "New", None, (), (), 1.0, True))
        assert await gov.version() == 3
        legacy = await responses.get("resp_legacy", Owner("legacy"))
        assert legacy is not None and legacy.conversation == [{"role": "user", "content": "hi"}]
        assert await responses.get("resp_legacy", Owner("other")) is None
    finally:
        store.close()
        await gov.close()
        responses.close()
    again = SQLiteStore(db)  # a second start applies and adopts nothing
    try:
        assert len(again.query_logs(LogQuery())) == 3
        assert again.spend(SpendQuery())[0]["requests"] == 3
        with again.db.locked() as conn:
            assert rows(conn, "SELECT count(*) FROM schema_migrations") == [(len(ledger_migrations.SCHEMA.sqlite) + 1 + gov_schema.SCHEMA_VERSION,)]
    finally:
        again.close()


async def test_a_postgresql_store_made_before_the_state_layer_is_adopted_not_remigrated(
        pg_name: str, pg_conn: Any) -> None:
    loader = await asyncpg.connect(url(pg_name))
    try:
        await loader.execute((DATA / "legacy_state_postgres.sql").read_text())
    finally:
        await loader.close()
    log, gov = PostgresLog(url(pg_name)), PostgresGovStore(url(pg_name))
    responses = PostgresResponses(log)
    try:
        assert await log.write([NEW]) == 1
        # Ledger 1-4 adopted from interlock_schema (its 5 was the responses table's), the route rollup (6) and
        # the response cache's columns (7), the usage rollup (8) and the guardrail-action column (9) applied.
        assert await postgres_versions(pg_conn) == {"ledger": 9, "responses": 1}
        assert [r[0] for r in await pg_conn.fetch("SELECT version FROM interlock_schema ORDER BY 1")] == [
            1, 2, 3, 4, 5]
        check_legacy_log(await log.query(LogQuery()), await log.spend(SpendQuery()))
        defs = await gov.load()
        assert defs.version == 2 and list(defs.projects) == ["legacy"]
        assert (await postgres_versions(pg_conn))["governance"] == gov_schema.SCHEMA_VERSION  # adopted at 2, then migrated on
        assert [r[0] for r in await pg_conn.fetch("SELECT version FROM governance_schema ORDER BY 1")] == [1, 2]
        legacy = await responses.get("resp_legacy", ADMIN)
        assert legacy is not None and legacy.project == "legacy"
    finally:
        await log.close()
        await gov.close()
    again = PostgresLog(url(pg_name))
    try:
        assert (await again.spend(SpendQuery()))[0]["requests"] == 3
        assert await pg_conn.fetchval("SELECT count(*) FROM schema_migrations") == (
            len(ledger_migrations.SCHEMA.postgres) + 1 + gov_schema.SCHEMA_VERSION)
    finally:
        await again.close()


# ----------------------------------------------------------------- the runner itself

TOY = Schema("toy", sqlite=((1, "CREATE TABLE toy (a INTEGER); INSERT INTO toy VALUES (1)"),
                            (2, "ALTER TABLE toy ADD COLUMN b TEXT")),
             postgres=((1, "CREATE TABLE toy (a integer); INSERT INTO toy VALUES (1)"),
                       (2, "ALTER TABLE toy ADD COLUMN b text")))
BROKEN = Schema("toy", sqlite=(*TOY.sqlite, (3, "ALTER TABLE toy ADD COLUMN b TEXT")),
                postgres=(*TOY.postgres, (3, "ALTER TABLE toy ADD COLUMN b text")))


def test_sqlite_runs_are_idempotent(tmp_path: Path) -> None:
    conn = connect(tmp_path / "toy.db")
    try:
        assert migrate_sqlite(conn, [TOY]) == {"toy": 2}
        assert migrate_sqlite(conn, [TOY]) == {"toy": 2}
        assert rows(conn, "SELECT a, b FROM toy") == [(1, None)]
        assert rows(conn, "SELECT component, version FROM schema_migrations ORDER BY 2") == [("toy", 1), ("toy", 2)]
    finally:
        conn.close()


def test_a_failing_sqlite_migration_rolls_back_the_whole_run(tmp_path: Path) -> None:
    conn = connect(tmp_path / "toy.db")
    try:
        with pytest.raises(MigrationError) as err:
            migrate_sqlite(conn, [BROKEN])
        assert (err.value.component, err.value.version, err.value.dialect) == ("toy", 3, "sqlite")
        assert "sqlite migration toy 3 failed and was rolled back" in str(err.value)
        assert "duplicate column name: b" in str(err.value)
        assert not conn.in_transaction
        # Versions 1 and 2 ran in the same transaction: nothing of them stayed.
        assert rows(conn, "SELECT name FROM sqlite_master WHERE name = 'toy'") == []
        assert sqlite_versions(conn) == {}
        assert migrate_sqlite(conn, [TOY]) == {"toy": 2}  # the connection is usable, the good ones apply
    finally:
        conn.close()


def test_a_failing_callable_step_is_reported_with_its_cause(tmp_path: Path) -> None:
    def step(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (a INTEGER)")
        raise ValueError("no such thing")

    conn = connect(tmp_path / "toy.db")
    try:
        with pytest.raises(MigrationError, match=r"toy 1 failed .*ValueError: no such thing") as err:
            migrate_sqlite(conn, [Schema("toy", sqlite=((1, step),))])
        assert isinstance(err.value.__cause__, ValueError)
        assert rows(conn, "SELECT name FROM sqlite_master WHERE name = 'half'") == []
    finally:
        conn.close()


def test_versions_must_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Schema("x", sqlite=((2, "SELECT 1"), (1, "SELECT 1")))
    with pytest.raises(ValueError, match="strictly increasing"):
        Schema("x", postgres=((1, "SELECT 1"), (1, "SELECT 1")))


def test_legacy_versions_are_adopted_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "toy.db")
    try:
        conn.executescript("CREATE TABLE toy (a INTEGER); PRAGMA user_version = 1")
        schema = Schema("toy", sqlite=TOY.sqlite, sqlite_legacy=lambda c: int(c.execute(
            "PRAGMA user_version").fetchone()[0]))
        assert migrate_sqlite(conn, [schema]) == {"toy": 2}  # 1 adopted (CREATE TABLE would fail), 2 applied
        conn.execute("PRAGMA user_version = 0")  # read only when the component has no row yet
        assert migrate_sqlite(conn, [schema]) == {"toy": 2}
        assert rows(conn, "SELECT a, b FROM toy") == []
    finally:
        conn.close()


def test_two_sqlite_processes_starting_together_apply_once(tmp_path: Path) -> None:
    calls: list[int] = []

    def slow(conn: sqlite3.Connection) -> None:
        calls.append(1)
        time.sleep(0.2)
        conn.execute("CREATE TABLE slow (a INTEGER)")

    schema = Schema("slow", sqlite=((1, slow),))
    results: list[dict[str, int]] = []

    def run() -> None:
        conn = connect(tmp_path / "race.db")
        try:
            results.append(migrate_sqlite(conn, [schema]))
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and results == [{"slow": 1}] * 3


async def test_postgres_runs_are_idempotent_and_roll_back_on_failure(pg_conn: Any) -> None:
    with pytest.raises(MigrationError, match="postgresql migration toy 3 failed and was rolled back") as err:
        await migrate_postgres(pg_conn, [BROKEN])
    assert isinstance(err.value.__cause__, asyncpg.DuplicateColumnError)
    assert await pg_conn.fetchval("SELECT to_regclass('toy')") is None
    assert await postgres_versions(pg_conn) == {}
    assert await migrate_postgres(pg_conn, [TOY]) == {"toy": 2}
    assert await migrate_postgres(pg_conn, [TOY]) == {"toy": 2}
    assert await pg_conn.fetchval("SELECT count(*) FROM schema_migrations WHERE component = 'toy'") == 2
    assert [tuple(r) for r in await pg_conn.fetch("SELECT a, b FROM toy")] == [(1, None)]


async def test_two_postgres_runners_starting_together_apply_once(pg_name: str, pg_conn: Any) -> None:
    async def slow(conn: Any) -> None:
        await conn.execute("CREATE TABLE IF NOT EXISTS calls (n integer); INSERT INTO calls VALUES (1)")
        await asyncio.sleep(0.3)

    schema = Schema("slow", postgres=((1, slow), (2, "CREATE TABLE after_slow (a integer)")))
    conns = [await asyncpg.connect(url(pg_name)) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate_postgres(c, [schema]) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert results == [{"slow": 2}] * 3
    assert await pg_conn.fetchval("SELECT count(*) FROM calls") == 1


async def test_gateways_opening_one_postgresql_store_together(pg_name: str, pg_conn: Any) -> None:
    logs = [PostgresLog(url(pg_name)) for _ in range(3)]
    govs = [PostgresGovStore(url(pg_name)) for _ in range(2)]
    try:
        await asyncio.gather(*(s.ping() for s in logs), *(g.version() for g in govs))
        assert await pg_conn.fetchval("SELECT count(*) FROM schema_migrations") == (
            len(ledger_migrations.SCHEMA.postgres) + 1 + gov_schema.SCHEMA_VERSION)
    finally:
        for s in logs:
            await s.close()
        for g in govs:
            await g.close()


def test_the_responses_component_alone_on_a_bare_file(tmp_path: Path) -> None:
    store = SQLiteResponses(tmp_path / "bare.db")
    try:
        with store.db.locked() as conn:
            assert sqlite_versions(conn) == {"responses": responses_store.SCHEMA.sqlite_version}
            # As before the state layer: this connection leaves the file's journal mode alone.
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        store.close()
