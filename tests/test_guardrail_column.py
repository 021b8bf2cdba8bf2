"""The request log's guardrail column: the strongest action per request, its filter, its index, old rows.

``guardrail_action`` is written by ``record.build_row`` (NULL when nothing was detected), read by the
``guardrail`` filter of ``/admin/v1/logs``, the console's request log and ``interlock logs`` through two
partial indexes, and filled by the migration for rows logged before it (tests/test_ledger_migrations.py
covers rows of the old column layout; rows with a packed ``detail`` are covered here).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.core.context import RequestContext
from interlock.core.errors import InvalidRequest
from interlock.ledger import migrations
from interlock.ledger.filters import log_query
from interlock.ledger.record import GUARDRAIL_ACTIONS, GUARDRAIL_COLUMN, Redactor, build_row, strongest_action
from interlock.ledger.rowcodec import (
    R_GUARDRAIL,
    ROW_COLUMNS,
    from_spill,
    row_from_record,
    row_record,
    spill_line,
)
from interlock.ledger.schema import GUARDRAIL_FILTERS, LogQuery, log_sql
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.writer import LogStore
from interlock.state.migrations import Schema
from interlock.state.sqlite import SQLiteDB

T0 = 1_750_000_000.0

PII = {"detector": "pii", "action": "monitor", "score": 1.0, "entities": {"EMAIL_ADDRESS": 1}}
SECRET = {"detector": "secrets", "action": "block", "score": 1.0, "entities": {"OPENAI_KEY": 1}}
REDACTED = {"detector": "pii", "action": "redact", "score": 1.0, "entities": {"PHONE_NUMBER": 2}}
FAILED_OPEN = {"detector": "prompt_injection", "action": "block", "score": 0.0, "unchecked": True}
DOWN = {"detector": "pii", "action": "unavailable"}

#: (guardrails on the record, the strongest action).
CASES: list[tuple[Any, str]] = [
    (None, ""), ([], ""), ([PII], "monitor"), ([PII, REDACTED], "redact"), ([REDACTED, SECRET, PII], "block"),
    ([FAILED_OPEN], "unchecked"), ([FAILED_OPEN, PII], "monitor"), ([DOWN], "unavailable"),
    ([{**PII, "direction": "output"}, REDACTED], "redact"),
    ([{"detector": "x", "action": "something new"}, "not a dict", 3], ""),
]


@pytest.mark.parametrize(("found", "action"), CASES)
def test_strongest_action(found: Any, action: str) -> None:
    assert strongest_action(found) == action


def test_filters_are_every_action_and_any() -> None:
    assert set(GUARDRAIL_FILTERS) == {"any", *GUARDRAIL_ACTIONS} and GUARDRAIL_FILTERS[:2] == ("any", "block")


def test_build_row_writes_the_column() -> None:
    plain = build_row(RequestContext("openai.chat"), "metadata", False, Redactor())
    assert len(plain) == len(ROW_COLUMNS) and plain[R_GUARDRAIL] == ""
    ctx = RequestContext("openai.chat")
    ctx.guardrails = [PII, SECRET]
    row = build_row(ctx, "metadata", False, Redactor())
    assert row[R_GUARDRAIL] == "block" and ROW_COLUMNS[R_GUARDRAIL] == GUARDRAIL_COLUMN
    assert row_record(row)["guardrails"] == [PII, SECRET]  # the full detections stay in the record
    assert row_from_record({"id": "r", "received_at": T0, "guardrails": [REDACTED]})[R_GUARDRAIL] == "redact"


def test_rows_spilled_before_the_column_read_it_from_their_detail() -> None:
    ctx = RequestContext("openai.chat")
    ctx.guardrails = [FAILED_OPEN, REDACTED]
    row = build_row(ctx, "metadata", False, Redactor())
    old = [*orjson.loads(spill_line(row))]
    del old[1 + R_GUARDRAIL]
    assert from_spill(old) == row and row[R_GUARDRAIL] == "redact"
    clean = build_row(RequestContext("openai.chat"), "metadata", False, Redactor())
    old = [*orjson.loads(spill_line(clean))]
    del old[1 + R_GUARDRAIL]
    assert from_spill(old) == clean


def test_a_bad_filter_is_a_400_naming_it() -> None:
    with pytest.raises(InvalidRequest) as info:
        log_query({"guardrail": "blocked"})
    assert info.value.param == "guardrail" and "any, block" in info.value.message
    assert log_query({"guardrail": "redact"})[0].guardrail == "redact"
    assert log_query({"guardrail": ""})[0].guardrail is None


def records() -> list[dict[str, Any]]:
    """Twelve requests of two projects, some with detections."""
    found: list[Any] = [None, [PII], None, [REDACTED, PII], [SECRET], None, [FAILED_OPEN], [DOWN], None,
                        [{**PII, "direction": "output"}], [SECRET, REDACTED], None]
    return [{"id": f"req_{i:03d}", "received_at": T0 + i, "project": "alpha" if i % 2 == 0 else "beta",
             "inbound": "openai.chat", "model": "openai/gpt-4.1-mini", "vendor": "openai", "status": 200,
             "guardrails": g, "content_level": "metadata"} for i, g in enumerate(found)]


def expected(action: str, project: str | None = None) -> list[str]:
    out = []
    for r in reversed(records()):
        a = strongest_action(r["guardrails"])
        if a and (action == "any" or a == action) and project in (None, r["project"]):
            out.append(r["id"])
    return out


async def test_the_filter_on_both_stores(log_store: LogStore) -> None:
    assert await log_store.write(records()) == 12
    for action in GUARDRAIL_FILTERS:
        got = [r["id"] for r in await log_store.query(LogQuery(guardrail=action))]
        assert got == expected(action), action
    assert expected("any") == ["req_010", "req_009", "req_007", "req_006", "req_004", "req_003", "req_001"]
    beta = [r["id"] for r in await log_store.query(LogQuery(guardrail="any", project="beta"))]
    assert beta == expected("any", "beta")
    # Cursor pages of two walk the same records.
    seen: list[str] = []
    q = LogQuery(guardrail="any", limit=2)
    while True:
        page = await log_store.query(q)
        seen += [r["id"] for r in page]
        if len(page) < 2:
            break
        q = LogQuery(guardrail="any", limit=2, cursor=(page[-1]["received_at"], page[-1]["id"]))
    assert seen == expected("any")
    oldest = await log_store.query(LogQuery(guardrail="block", ascending=True))
    assert [r["id"] for r in oldest] == ["req_004", "req_010"]


def plan(conn: sqlite3.Connection, q: LogQuery) -> str:
    sql, args = log_sql(q, lambda _: "?", postgres=False)
    return " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_sqlite_reads_the_partial_indexes(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "interlock.db").close()
    with sqlite3.connect(tmp_path / "interlock.db") as conn:
        assert "requests_guardrail " in plan(conn, LogQuery(guardrail="block")) + " "
        assert "requests_guardrail_any" in plan(conn, LogQuery(guardrail="any"))
        assert "guardrail" not in plan(conn, LogQuery())


async def test_the_migration_fills_rows_with_a_packed_detail(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    SQLiteDB(db, schemas=(Schema("ledger", sqlite=[s for s in migrations.SCHEMA.sqlite if s[0] < 8]),)).close()
    rows = [row_from_record(r) for r in records()]
    columns = [c for c in ROW_COLUMNS if c != GUARDRAIL_COLUMN]
    with sqlite3.connect(db) as conn:
        conn.executemany(f"INSERT INTO requests ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                         [tuple(None if v == "" else v for i, v in enumerate(r) if i != R_GUARDRAIL) for r in rows])
        # A row whose detail names a detector only in its text is not taken for a detection.
        conn.execute("UPDATE requests SET detail = replace(detail, '\"metadata\"', '\"a \\\"detector\\\" said\"') "
                     "WHERE id = 'req_000'")
    store = SQLiteStore(db)
    try:
        log = SQLiteLog(store)
        for action in GUARDRAIL_FILTERS:
            assert [r["id"] for r in await log.query(LogQuery(guardrail=action))] == expected(action), action
    finally:
        store.close()
