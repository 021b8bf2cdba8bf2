"""The MCP store on SQLite and PostgreSQL: sealed credentials, access keys, users, the call log; and sealing."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interlock.governance import ops
from interlock.governance.store import Duplicate, GovStore, PostgresGovStore, SQLiteGovStore
from interlock.mcp.calllog import McpCallLog
from interlock.mcp.model import ToolCall
from interlock.mcp.sealing import ENV_KEY, KEY_FILE, Sealer, SealError, aad
from interlock.mcp.store import McpStore
from tests import pg_util

SECRET = b"store-test-secret"
A, B = os.urandom(32), os.urandom(32)


@pytest.fixture(params=["sqlite", "postgresql"])
async def gov(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GovStore]:
    if request.param == "sqlite":
        store: GovStore = SQLiteGovStore(tmp_path / "interlock.db")
        store.migrate()  # type: ignore[attr-defined]
        yield store
        await store.close()
        return
    name = pg_util.create_database()
    store = PostgresGovStore(pg_util.url(name))
    try:
        yield store
    finally:
        await store.close()
        pg_util.drop_database(name)


def test_sealing_binds_values_to_their_row_and_key() -> None:
    sealer = Sealer(A)
    sealed = sealer.seal(b"k-1", aad("acme", "u1", "crm"))
    assert sealed.startswith(f"v1:{sealer.current_id}:") and b"k-1" not in sealed.encode()
    assert sealer.open(sealed, aad("acme", "u1", "crm")) == b"k-1"
    with pytest.raises(SealError, match="moved from another row"):
        sealer.open(sealed, aad("acme", "u2", "crm"))
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SealError):
        sealer.open(tampered, aad("acme", "u1", "crm"))
    with pytest.raises(SealError, match=ENV_KEY) as info:
        Sealer(B).open(sealed, aad("acme", "u1", "crm"))
    assert A.hex() not in str(info.value)
    assert Sealer(B, old=[A]).open(sealed, aad("acme", "u1", "crm")) == b"k-1"


def test_keys_from_the_environment_or_the_state_directory(tmp_path: Path) -> None:
    assert Sealer.from_env({ENV_KEY: A.hex()}, tmp_path).current_id == Sealer(A).current_id
    with pytest.raises(SealError, match="32 bytes"):
        Sealer.from_env({ENV_KEY: os.urandom(16).hex()}, tmp_path)
    first = Sealer.from_env({}, tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert Sealer.from_env({}, tmp_path).current_id == first.current_id


async def test_users_credentials_and_rotation(gov: GovStore) -> None:
    store = McpStore(gov, Sealer(A), SECRET)
    await store.add_user("acme", "u1", "One")
    await store.add_user("acme", "u2", "")
    await store.add_user("beta", "u1", "")  # ids are per project
    with pytest.raises(Duplicate):
        await store.add_user("acme", "u1", "")
    assert [u.id for u in await store.users("acme", "", 10)] == ["u1", "u2"]
    assert [u.id for u in await store.users("acme", "u1", 10)] == ["u2"]
    await store.put_credential("acme", "u1", "crm", "api_key", {"api_key": "secret-value-1"})
    credential = await store.credential("acme", "u1", "crm")
    assert credential is not None and credential.api_key == "secret-value-1"
    assert "secret-value-1" not in repr(credential)
    stored = await gov.fetch("SELECT sealed FROM mcp_credentials")
    assert all("secret-value-1" not in row[0] for row in stored)
    assert await store.credential("beta", "u1", "crm") is None
    # Rotation: B current, A still readable; reseal moves the value under B; then B alone opens it.
    rotated = McpStore(gov, Sealer(B, old=[A]), SECRET)
    assert await rotated.reseal() == 1
    alone = McpStore(gov, Sealer(B), SECRET)
    found = await alone.credential("acme", "u1", "crm")
    assert found is not None and found.api_key == "secret-value-1"
    # Deleting a user deletes its credentials and revokes its access keys.
    minted = await alone.mint("acme", "pack", "u1", 600)
    assert await alone.delete_user("acme", "u1")
    assert await alone.credential("acme", "u1", "crm") is None
    grant = await alone.grant(minted["key"])
    assert grant is not None and grant.revoked


async def test_access_keys(gov: GovStore) -> None:
    store = McpStore(gov, Sealer(A), SECRET)
    minted = await store.mint("acme", "support", "u1", 600)
    assert minted["key"].startswith("ik-mcp-")
    grant = await store.grant(minted["key"])
    assert grant is not None and (grant.project, grant.pack, grant.user, grant.revoked) == (
        "acme", "support", "u1", False)
    assert abs(grant.expires_at - (time.time() + 600)) < 5
    assert await store.grant("ik-mcp-unknown") is None
    assert minted["key"] not in str(await store.access_keys("acme"))
    assert not await store.revoke("beta", minted["id"])  # another project cannot revoke it
    assert await store.revoke("acme", minted["id"])
    grant = await store.grant(minted["key"])
    assert grant is not None and grant.revoked


def call(project: str, pack: str, at: float, status: str = "ok") -> ToolCall:
    return ToolCall(id=f"tc_{os.urandom(6).hex()}", at=at, project=project, key_id="key_1", pack=pack, user="u1",
                    server="docs", tool="echo", name="echo", duration_ms=1.5, status=status, args_bytes=2,
                    result_bytes=10, guardrails=[{"detector": "secrets", "action": "monitor", "score": 1.0}])


async def test_call_log_flush_query_scope_and_retention(gov: GovStore) -> None:
    log = McpCallLog(gov, retention_days=1)
    now = time.time()
    log.submit(call("a", "p1", now - 3 * 86400))
    log.submit(call("a", "p1", now - 10))
    log.submit(call("a", "p2", now - 5, "blocked"))
    log.submit(call("b", "p1", now))
    await log.flush()
    rows = await log.calls("a", {}, 10, None)
    assert [r["pack"] for r in rows] == ["p2", "p1", "p1"]  # newest first
    assert rows[0]["guardrails"] == [{"detector": "secrets", "action": "monitor", "score": 1.0}]
    assert [r["status"] for r in await log.calls("a", {"status": "blocked"}, 10, None)] == ["blocked"]
    assert all(r["project"] == "b" for r in await log.calls("b", {}, 10, None))
    await log._purge()
    assert len(await log.calls("a", {}, 10, None)) == 2  # the 3-day-old record is gone


async def test_call_log_keeps_a_batch_the_store_refused(tmp_path: Path) -> None:
    class Down(SQLiteGovStore):
        async def transaction(self, stmts: object) -> list[int]:  # type: ignore[override]
            raise OSError("the store is down")

    log = McpCallLog(Down(tmp_path / "x.db"), retention_days=None)
    log.submit(call("a", "p", time.time()))
    await log.flush()
    assert len(log._pending) == 1  # kept for the next flush, not lost


async def test_deleting_a_project_deletes_its_mcp_state(gov: GovStore) -> None:
    await ops.create_project(gov, {"id": "acme"})
    store = McpStore(gov, Sealer(A), SECRET)
    await store.add_user("acme", "u1", "")
    await store.put_credential("acme", "u1", "crm", "api_key", {"api_key": "k"})
    minted = await store.mint("acme", "support", "u1", 600)
    assert await gov.delete_project("acme")
    store.forget()
    assert await store.user("acme", "u1") is None and await store.credential("acme", "u1", "crm") is None
    grant = await store.grant(minted["key"])
    assert grant is not None and grant.revoked
