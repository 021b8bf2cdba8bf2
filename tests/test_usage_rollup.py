"""The hourly usage rollup (``usage_hourly``): summed per batch with its ``*`` levels, written with the batch
in both stores, backfilled by its migration, and read by the console's Overview queries."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg

from interlock.console.overview import OverviewPage
from interlock.console.spend import SpendPage, parse_params
from interlock.console.web import load_static, make_environment
from interlock.ledger import migrations, pgstore
from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.rowcodec import R_GUARDRAIL, ROW_COLUMNS, row_from_record
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.usage import (
    ALL,
    COUNTERS,
    TPS_EDGES,
    TTFT_EDGES,
    USAGE_VALUES,
    dims_read,
    models_read,
    percentile,
    projects_read,
    series_read,
    spend_periods_read,
    usage_deltas,
)
from interlock.ledger.writer import LogStore
from interlock.state.migrations import Schema
from interlock.state.sqlite import SQLiteDB
from tests.test_ledger_migrations import NEW, OLD, v2_database

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
H0 = int(T0 // 3600)
MINI = "openai/gpt-4.1-mini"
_T = len(COUNTERS)
_S = _T + len(TTFT_EDGES) + 1

#: The row as the log wrote it before the guardrail column (the migrations these tests start from).
V7_COLUMNS = tuple(c for c in ROW_COLUMNS if c != "guardrail_action")


def rec(i: int, at: float, project: str = "alpha", status: int = 200, model: str = MINI, vendor: str = "openai",
        **extra: Any) -> dict[str, Any]:
    return {"id": f"req_{i:06d}", "received_at": at, "inbound": "openai.chat", "model": model, "vendor": vendor,
            "project": project, "key_id": f"key_{project}", "status": status, "input_tokens": 10,
            "output_tokens": 5 if status < 400 else 0, "cost_picousd": 1000, "duration_ms": 1000.0,
            "ttft_ms": 200.0, "content_level": "metadata", **extra}


def hist(values: tuple[Any, ...], start: int, n: int) -> dict[int, int]:
    return {i: c for i, c in enumerate(values[start:start + n]) if c}


def test_deltas_sum_per_project_model_vendor_hour_and_levels() -> None:
    rows = [row_from_record(r) for r in (
        rec(1, T0), rec(2, T0 + 10, status=503), rec(3, T0 + 20, project="beta"), rec(4, T0 + 3600),
        rec(5, T0, vendor="azure", ttft_ms=30.0, duration_ms=100.0, stream=1))]
    by_key = {d[:4]: d[4:] for d in usage_deltas(rows)}
    assert set(by_key) == {
        ("alpha", MINI, "openai", H0), ("alpha", MINI, "azure", H0), ("beta", MINI, "openai", H0),
        ("alpha", MINI, "openai", H0 + 1), ("alpha", ALL, ALL, H0), ("beta", ALL, ALL, H0), ("alpha", ALL, ALL, H0 + 1),
        (ALL, MINI, "openai", H0), (ALL, MINI, "azure", H0), (ALL, MINI, "openai", H0 + 1), (ALL, ALL, ALL, H0),
        (ALL, ALL, ALL, H0 + 1)}
    total = by_key[(ALL, ALL, ALL, H0)]
    assert total[:_T] == (4, 1, 40, 15, 4000, 0)
    # TTFT of the three that succeeded: 200 ms twice, 30 ms once; the failed one has none.
    assert sum(total[_T:_S]) == 3 and sum(total[_S:]) == 3
    assert percentile(total[_T:_S], 0.5, TTFT_EDGES) is not None
    p50 = percentile(total[_T:_S], 0.5, TTFT_EDGES)
    assert p50 is not None and 200 / 1.2 < p50 < 200 * 1.2
    # 5 tokens over 1 s (not streamed) is 5 tokens/s; streamed, the generation excludes the TTFT (5 / 0.07 s).
    assert percentile(by_key[("alpha", MINI, "openai", H0)][_S:], 0.5, TPS_EDGES) == \
        percentile(_one(TPS_EDGES, 5.0), 0.5, TPS_EDGES)
    fast = percentile(by_key[("alpha", MINI, "azure", H0)][_S:], 0.5, TPS_EDGES)
    assert fast is not None and 5 / 0.07 / 1.2 < fast < 5 / 0.07 * 1.2


def test_percentile_reads_the_summed_histogram() -> None:
    assert percentile([0] * 24, 0.5, TTFT_EDGES) is None
    counts = [0] * 24
    counts[3], counts[10] = 95, 5
    low = percentile(counts, 0.5, TTFT_EDGES)
    high = percentile(counts, 0.99, TTFT_EDGES)
    assert low is not None and high is not None
    assert TTFT_EDGES[2] <= low <= TTFT_EDGES[3] and TTFT_EDGES[9] <= high <= TTFT_EDGES[10]
    counts = [0] * 24
    counts[0], counts[23] = 1, 1
    assert percentile(counts, 0.5, TTFT_EDGES) == TTFT_EDGES[0] / 2 ** 0.25
    assert percentile(counts, 1.0, TTFT_EDGES) == TTFT_EDGES[-1] * 2 ** 0.25


async def test_written_once_and_read_from_either_store(log_store: LogStore) -> None:
    batch = [rec(i, T0 + i * 600, project="alpha" if i % 3 else "beta", status=502 if i == 4 else 200)
             for i in range(9)]
    assert await log_store.write(batch) == 9
    assert await log_store.write([*batch, rec(99, T0 + 60, model="anthropic/claude-sonnet-4-5",
                                              vendor="anthropic", cost_picousd=5000)]) == 1  # a replay counts once
    series = await log_store.read_rollup(series_read(ALL, H0 - 1, H0 + 5))
    assert [(r[0], r[1], r[2]) for r in series] == [(H0, 7, 1), (H0 + 1, 3, 0)]
    alpha = await log_store.read_rollup(series_read("alpha", H0, H0 + 5))
    assert [(r[0], r[1]) for r in alpha] == [(H0, 5), (H0 + 1, 2)]
    models = {r[0]: r[1:] for r in await log_store.read_rollup(models_read(ALL, H0, H0 + 2))}
    assert {k: (v[0], v[4]) for k, v in models.items()} == {MINI: (9, 9000), "anthropic/claude-sonnet-4-5": (1, 5000)}
    daily = await log_store.read_rollup(dims_read("model", "2025-06-15", "2025-06-15", "alpha"))
    assert sorted((r[0], int(r[1])) for r in daily) == [("anthropic/claude-sonnet-4-5", 1), (MINI, 6)]
    assert {r[0]: r[1] for r in await log_store.read_rollup(projects_read(H0, H0 + 2))} == {"alpha": 7, "beta": 3}
    beta = await log_store.read_rollup(models_read("beta", H0 + 1, H0 + 2))
    assert [r[:2] for r in beta] == [(MINI, 1)]
    days = await log_store.read_rollup(spend_periods_read("project", "2025-06-15", "2025-06-15", None))
    assert sorted((r[0], r[1], int(r[2]), int(r[4])) for r in days) == [
        ("2025-06-15", "alpha", 6000 + 5000, 7), ("2025-06-15", "beta", 3000, 3)]
    mine = await log_store.read_rollup(spend_periods_read("model", "2025-06-01", "2025-06-30", "alpha"))
    assert sorted((r[1], int(r[2])) for r in mine) == [("anthropic/claude-sonnet-4-5", 5000), (MINI, 6000)]


async def test_the_migration_backfills_logged_requests(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    v2_database(db)  # OLD: ttft 100 ms, 12.5 tokens/s, in its own columns
    sqlite = SQLiteStore(db)
    try:
        log = SQLiteLog(sqlite)
        assert await log.write([NEW]) == 1
        rows = await log.read_rollup(series_read(ALL, 0, H0 + 10))
        assert len(rows) == 1 and rows[0][0] == H0
        values = dict(zip(USAGE_VALUES, rows[0][1:], strict=True))
        assert (values["requests"], values["errors"], values["cost_picousd"]) == (2, 1, 43_000)
        assert percentile(rows[0][1 + _T:1 + _S], 0.5, TTFT_EDGES) == percentile(
            _one(TTFT_EDGES, OLD["ttft_ms"]), 0.5, TTFT_EDGES)
        assert percentile(rows[0][1 + _S:], 0.5, TPS_EDGES) == percentile(
            _one(TPS_EDGES, OLD["output_tps"]), 0.5, TPS_EDGES)
        assert [r[0] for r in await log.read_rollup(projects_read(0, H0 + 10))] == ["alpha"]
    finally:
        sqlite.close()


def _one(edges: tuple[float, ...], value: float) -> list[int]:
    out = [0] * (len(edges) + 1)
    out[sum(1 for e in edges if e <= value)] = 1
    return out


async def test_the_postgresql_migration_backfills_logged_requests(pg_url: str) -> None:
    """A log at ledger migration 7 (before the usage rollup) holding rows: migration 8 fills usage_hourly."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("CREATE TABLE schema_migrations (component text NOT NULL, version integer NOT NULL, "
                           "applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))")
        for version, sql in migrations.POSTGRES:
            if version < 8:
                assert isinstance(sql, str)
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (component, version) VALUES ('ledger', $1)", version)
        rows = [row_from_record(rec(i, T0 + i, status=500 if i == 2 else 200, stream=i % 2)) for i in range(4)]
        await conn.copy_records_to_table("requests", records=[r[:R_GUARDRAIL] + r[R_GUARDRAIL + 1:]
                                                              for r in pgstore._nulls(rows)], columns=V7_COLUMNS)
    finally:
        await conn.close()
    log = PostgresLog(pg_url)
    try:
        (row,) = await log.read_rollup(series_read(ALL, H0, H0 + 1))
        assert row[:3] == (H0, 4, 1)
        assert sum(row[1 + _T:1 + _S]) == 3  # the three that succeeded, each with its TTFT
        expected = usage_deltas(rows)
        total = next(d for d in expected if d[:4] == (ALL, ALL, ALL, H0))
        assert tuple(row[1:]) == tuple(total[4:])  # the backfill puts each row in the bucket the writer would
    finally:
        await log.close()


async def test_the_sqlite_migration_puts_rows_where_the_writer_would(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    SQLiteDB(db, schemas=(Schema("ledger", sqlite=[s for s in migrations.SCHEMA.sqlite if s[0] < 7]),)).close()
    rows = [row_from_record(rec(i, T0 + i, status=500 if i == 2 else 200, stream=i % 2, ttft_ms=20.0 + 300 * i))
            for i in range(4)]
    with sqlite3.connect(db) as conn:
        conn.executemany(f"INSERT INTO requests ({', '.join(V7_COLUMNS)}) VALUES "
                         f"({', '.join('?' for _ in V7_COLUMNS)})",
                         [tuple(v if v != "" else None for i, v in enumerate(r) if i != R_GUARDRAIL) for r in rows])
    sqlite = SQLiteStore(db)
    try:
        backfilled = await SQLiteLog(sqlite).read_rollup(series_read(ALL, H0, H0 + 1))
        total = next(d for d in usage_deltas(rows) if d[:4] == (ALL, ALL, ALL, H0))
        assert [tuple(r[1:]) for r in backfilled] == [tuple(total[4:])]
    finally:
        sqlite.close()


async def test_the_pages_read_rollups_only(tmp_path: Path) -> None:
    """Every statement the Overview and Spend pages send reads a rollup: never ``requests``, never a count."""
    sqlite = SQLiteStore(tmp_path / "interlock.db")
    log = SQLiteLog(sqlite)
    try:
        await log.write([rec(i, T0 + i * 900, project="alpha" if i % 2 else "beta", tags=["t"]) for i in range(20)])
        statements: list[str] = []
        sqlite._query(lambda conn: conn.set_trace_callback(statements.append))
        env = make_environment(load_static())
        overview = OverviewPage(env, None, log, lambda: [], FixedClock(T0 + 6 * 3600))  # type: ignore[arg-type]
        spend = SpendPage(env, None, log, None, FixedClock(T0 + 6 * 3600))  # type: ignore[arg-type]
        for project in (None, "alpha"):
            for window in ("1h", "24h", "7d", "30d"):
                view = await overview.view(project, window)
                assert view["totals"]["requests"] == ("20" if project is None else "10") or window == "1h"
            for group in ("model", "vendor", "project", "key", "tag"):
                for by in ("day", "week", "month"):
                    choice = parse_params({"by": by, "group": group, "from": "2025-06-01", "to": "2025-06-30"},
                                          dt.date(2025, 6, 30), admin=project is None, own=project)
                    spent = await spend.view(choice, project is None)
                    assert spent["requests"] == ("20" if project is None else "10")
        assert statements
        for sql in statements:
            assert not re.search(r"\b(from|join)\s+requests\b", sql, re.IGNORECASE), sql
            assert "count(" not in sql.lower(), sql
    finally:
        sqlite.close()


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now
