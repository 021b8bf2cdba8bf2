"""The audit log (governance/audit.py) on SQLite and PostgreSQL, and the console's pure helpers around it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interlock.console.audit import changes, decode, encode
from interlock.console.budgets import bar, budget_body, limit_body
from interlock.console.forms import done_note, field_list
from interlock.console.keys import key_body, key_status, project_body
from interlock.core.principal import Principal
from interlock.governance.audit import AuditLog, project_of
from interlock.governance.model import ApiKey, Definitions, Project
from interlock.governance.store import GovStore, PostgresGovStore, SQLiteGovStore
from tests.fake_clock import FakeClock

ADMIN = Principal("admin", "ik-admin-123")
PROJECT = Principal("project", "ik-proj-456", project="alpha", key_id="key_1")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GovStore]:
    gov: GovStore = (SQLiteGovStore(tmp_path / "interlock.db") if request.param == "sqlite"
                     else PostgresGovStore(request.getfixturevalue("pg_url")))
    await gov.version()  # migrated
    yield gov
    await gov.close()


async def test_entries_page_newest_first_by_project_and_never_keep_secrets(store: GovStore) -> None:
    clock = FakeClock()
    audit = AuditLog(store, clock)
    version = await store.version()
    made = []
    for i in range(5):
        clock.advance(1)
        made.append(await audit.record(ADMIN, "console", "key.create", "key", f"key_{i}",
                                       project="alpha" if i % 2 == 0 else "beta",
                                       after={"id": f"key_{i}", "key": "ik-SECRET", "digest": "abc", "name": "n"}))
    assert await store.version() == version  # an audit entry is not a change of definitions
    first = await audit.page(limit=2)
    assert [e.target_id for e in first] == ["key_4", "key_3"]
    assert first[0].after == {"id": "key_4", "name": "n"} and first[0].actor == "admin (ik-admin-123…)"
    rest = await audit.page(limit=10, before=(first[-1].at, first[-1].id))
    assert [e.target_id for e in rest] == ["key_2", "key_1", "key_0"]
    alpha = await audit.page(project="alpha")
    assert [e.target_id for e in alpha] == ["key_4", "key_2", "key_0"]
    entry = await audit.record(PROJECT, "api", "budget.delete", "budget", "bud_1", project="alpha",
                               before={"id": "bud_1"})
    assert entry.actor == "key_1 (ik-proj-456…)" and entry.after is None
    assert made[0].to_json()["target"] == {"kind": "key", "id": "key_0"}


def test_project_of_each_kind() -> None:
    defs = Definitions.build(1, [Project("alpha", "Alpha")],
                             [ApiKey("key_1", "alpha", "k", "ik-x", "d")], [], [])
    assert project_of(defs, "project", {"id": "alpha"}) == "alpha"
    assert project_of(defs, "key", {"id": "key_1", "project": "alpha"}) == "alpha"
    assert project_of(defs, "budget", {"scope": "key", "subject": "key_1"}) == "alpha"
    assert project_of(defs, "budget", {"scope": "key", "subject": "key_gone"}) is None
    assert project_of(defs, "limit", {"scope": "project", "subject": "beta"}) == "beta"
    assert project_of(defs, "limit", {"scope": "model", "subject": "openai/gpt-4.1"}) is None
    assert project_of(defs, "key", None) is None


def test_changes_show_what_moved() -> None:
    assert changes({"id": "k", "revoked_at": None, "created_at": 1.0}, {"id": "k", "revoked_at": 0.0,
                                                                         "created_at": 1.0}) == [
        ("revoked_at", "none", "1970-01-01 00:00:00 UTC")]
    created = changes(None, {"id": "p", "allowed_models": [], "name": "P", "zero_data_retention": False})
    assert created == [("id", "", "p"), ("name", "", "P"), ("zero_data_retention", "", "false")]
    assert changes({"id": "b", "amount_usd": "5"}, None) == [("id", "b", ""), ("amount_usd", "5", "")]


def test_cursor_round_trip_and_garbage() -> None:
    entry = pytest.importorskip("interlock.governance.audit").AuditEntry(
        "aud_1", 12.5, "admin", "console", "key.create", "key", "key_1", None, None, None)
    assert decode(encode(entry)) == (12.5, "aud_1")
    for bad in ("bogus", "", "W10", encode(entry)[:-3] + "!!!", "WyJhIiwxXQ"):
        assert decode(bad) is None, bad


def test_form_bodies_and_notes() -> None:
    assert field_list(" a, b\nc,, ") == ["a", "b", "c"]
    assert project_body({"id": " acme ", "log_level": "", "allowed_models": "openai/*", "name": "",
                         "zero_data_retention": "on"}) == {
        "id": "acme", "allowed_models": ["openai/*"], "allowed_vendors": [], "zero_data_retention": True}
    assert key_body({"project": "acme", "expires_in": "30d", "name": "ci"}) == {
        "project": "acme", "allowed_models": [], "name": "ci", "expires_in": "30d"}
    assert budget_body({"scope": "project", "subject": "a", "amount_usd": "5", "period": "daily", "mode": "soft",
                        "thresholds": "50, 90"})["thresholds"] == [50, 90]
    assert limit_body({"scope": "key", "subject": "k", "rpm": "60", "tpm": "", "concurrent": "x"}) == {
        "scope": "key", "subject": "k", "rpm": 60, "concurrent": "x"}
    assert done_note("done=key-revoked%3Akey_1") == "Key key_1 revoked."
    assert done_note("done=unknown%3Ax") == "" and done_note("") == ""


def test_key_status_and_budget_bar() -> None:
    key = ApiKey("k", "p", "n", "ik", "d", created_at=0.0)
    assert key_status(key, 10.0) == "active"
    assert key_status(ApiKey("k", "p", "n", "ik", "d", expires_at=5.0), 10.0) == "expired"
    assert key_status(ApiKey("k", "p", "n", "ik", "d", revoked_at=5.0), 10.0) == "revoked"
    assert key_status(ApiKey("k", "p", "n", "ik", "d", replaced_by="k2", expires_at=50.0), 10.0) == "rotating out"
    assert bar(2.0, 1.0, 10.0) == {"used_pct": 30.0, "meter": 3.0, "high": 8.0, "state": "ok"}
    assert bar(8.0, 0.5, 10.0)["state"] == "high"
    assert bar(9.0, 2.0, 10.0) == {"used_pct": 110.0, "meter": 10.0, "high": 8.0, "state": "over"}
