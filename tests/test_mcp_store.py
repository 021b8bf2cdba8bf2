"""Sealing, McpStore and McpCallLog on SQLite and on PostgreSQL (a throwaway database per test)."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interlock.governance import ops
from interlock.governance.store import Duplicate, GovStore, PostgresGovStore, SQLiteGovStore
from interlock.mcp.calllog import McpCallLog, hourly, summary
from interlock.mcp.model import ToolCall
from interlock.mcp.sealing import ENV_KEY, ENV_OLD, KEY_FILE, Sealer, SealError, aad, key_id
from interlock.mcp.store import McpStore
from tests import pg_util

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
SECRET = b"s" * 32
API_KEY = "sk-upstream-PLAINTEXT-4242"


@pytest.fixture(params=["sqlite", "postgresql"])
async def gov(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GovStore]:
    if request.param == "sqlite":
        lite = SQLiteGovStore(tmp_path / "interlock.db")
        lite.migrate()
        yield lite
        await lite.close()
        return
    name = pg_util.create_database()
    pg = PostgresGovStore(pg_util.url(name))
    try:
        yield pg
    finally:
        await pg.close()
        pg_util.drop_database(name)


def store_of(gov: GovStore, sealer: Sealer | None = None) -> McpStore:
    return McpStore(gov, sealer or Sealer(KEY_A), SECRET)


async def raw_database_text(gov: GovStore, tmp_path: Path) -> bytes:
    if isinstance(gov, SQLiteGovStore):
        return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("interlock.db"))
    rows = await gov.fetch("SELECT sealed FROM mcp_credentials")
    return "\n".join(str(r[0]) for r in rows).encode()


# ------------------------------------------------------------------------------------------------ sealing


def test_seal_round_trip_and_tamper() -> None:
    sealer = Sealer(KEY_A)
    sealed = sealer.seal(b"secret value", aad("p", "u", "s"))
    assert sealed.startswith(f"v1:{key_id(KEY_A)}:")
    assert b"secret value" not in sealed.encode()
    assert sealer.open(sealed, aad("p", "u", "s")) == b"secret value"
    assert sealer.seal(b"secret value", aad("p", "u", "s")) != sealed  # a fresh nonce each time
    head, payload = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[15] ^= 1
    with pytest.raises(SealError, match="does not open"):
        sealer.open(f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode()}", aad("p", "u", "s"))
    with pytest.raises(SealError, match="not a sealed value"):
        sealer.open("plain", aad("p", "u", "s"))


def test_a_value_does_not_open_under_another_rows_aad() -> None:
    sealer = Sealer(KEY_A)
    sealed = sealer.seal(b"x", aad("p", "alice", "s"))
    for other in (aad("p", "bob", "s"), aad("q", "alice", "s"), aad("p", "alice", "t")):
        with pytest.raises(SealError):
            sealer.open(sealed, other)


def test_unknown_key_id_names_the_variables_but_no_key() -> None:
    sealed = Sealer(KEY_A).seal(b"x", b"aad")
    with pytest.raises(SealError) as info:
        Sealer(KEY_B).open(sealed, b"aad")
    message = str(info.value)
    assert ENV_KEY in message and ENV_OLD in message and key_id(KEY_A) in message
    for material in (KEY_A.hex(), KEY_B.hex(), base64.urlsafe_b64encode(KEY_A).decode().rstrip("=")):
        assert material not in message


def test_from_env_parses_hex_and_base64_and_refuses_short_keys(tmp_path: Path) -> None:
    by_hex = Sealer.from_env({ENV_KEY: KEY_A.hex()}, tmp_path)
    by_b64 = Sealer.from_env({ENV_KEY: base64.urlsafe_b64encode(KEY_A).decode().rstrip("=")}, tmp_path)
    assert by_hex.current_id == by_b64.current_id == key_id(KEY_A)
    assert by_b64.open(by_hex.seal(b"v", b"a"), b"a") == b"v"
    short = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()
    with pytest.raises(SealError, match=f"{ENV_KEY} must be 32 bytes.*not 16") as info:
        Sealer.from_env({ENV_KEY: short}, tmp_path)
    assert short not in str(info.value)
    with pytest.raises(SealError, match=rf"{ENV_OLD}\[0\]"):
        Sealer.from_env({ENV_KEY: KEY_A.hex(), ENV_OLD: "nope!"}, tmp_path)
    assert not (tmp_path / KEY_FILE).exists()  # a key from the environment writes no file
    with_old = Sealer.from_env({ENV_KEY: KEY_B.hex(), ENV_OLD: f" {KEY_A.hex()} ,"}, tmp_path)
    assert with_old.open(by_hex.seal(b"v", b"a"), b"a") == b"v"


def test_without_the_variable_a_key_file_is_created_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Sealer.from_env({}, state)
    path = state / KEY_FILE
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    content = path.read_text()
    second = Sealer.from_env({}, state)
    assert second.current_id == first.current_id
    assert path.read_text() == content
    assert second.open(first.seal(b"v", b"a"), b"a") == b"v"


async def test_rotation_reseals_every_credential(gov: GovStore) -> None:
    old = store_of(gov, Sealer(KEY_A))
    await old.put_credential("p", "alice", "github", "api_key", {"api_key": "one"})
    await old.put_credential("p", "bob", "github", "oauth", {"access_token": "two", "expires_at": 5.0})
    rotated = store_of(gov, Sealer(KEY_B, [KEY_A]))
    assert (await rotated.credential("p", "alice", "github")).api_key == "one"  # type: ignore[union-attr]
    assert await rotated.reseal() == 2
    assert await rotated.reseal() == 0
    rows = await gov.fetch("SELECT key_id FROM mcp_credentials")
    assert {r[0] for r in rows} == {key_id(KEY_B)}
    only_b = store_of(gov, Sealer(KEY_B))
    assert (await only_b.credential("p", "alice", "github")).api_key == "one"  # type: ignore[union-attr]
    bob = await only_b.credential("p", "bob", "github")
    assert bob is not None and bob.kind == "oauth" and bob.oauth == {"access_token": "two", "expires_at": 5.0}
    with pytest.raises(SealError):
        await store_of(gov, Sealer(KEY_A)).credential("p", "alice", "github")


# ------------------------------------------------------------------------------------------------ McpStore


async def test_users_and_pagination(gov: GovStore) -> None:
    store = store_of(gov)
    for uid in ("carol", "alice", "bob"):
        await store.add_user("p", uid, uid.title())
    await store.add_user("q", "dave", "Dave")
    with pytest.raises(Duplicate):
        await store.add_user("p", "alice", "again")
    alice = await store.user("p", "alice")
    assert alice is not None and alice.name == "Alice" and alice.project == "p"
    assert await store.user("q", "alice") is None
    page = await store.users("p", "", 2)
    assert [u.id for u in page] == ["alice", "bob"]
    assert [u.id for u in await store.users("p", page[-1].id, 2)] == ["carol"]
    assert [u.id for u in await store.users(None, "", 10)] == ["alice", "bob", "carol", "dave"]


async def test_credentials_are_sealed_at_rest(gov: GovStore, tmp_path: Path) -> None:
    store = store_of(gov)
    await store.add_user("p", "alice", "Alice")
    out = await store.put_credential("p", "alice", "github", "api_key", {"api_key": API_KEY})
    assert API_KEY not in repr(out)
    cred = await store.credential("p", "alice", "github")
    assert cred is not None and cred.kind == "api_key" and cred.api_key == API_KEY
    assert API_KEY not in repr(cred)
    assert await store.credential("p", "bob", "github") is None
    assert [c["server"] for c in await store.credentials("p", "alice")] == ["github"]
    await store.put_credential("p", "alice", "github", "api_key", {"api_key": "replaced"})  # an upsert
    assert (await store.credential("p", "alice", "github")).api_key == "replaced"  # type: ignore[union-attr]
    await store.put_credential("p", "alice", "jira", "api_key", {"api_key": API_KEY})
    raw = await raw_database_text(gov, tmp_path)
    assert b"v1:" + key_id(KEY_A).encode() in raw  # the sealed rows are in what was read
    assert API_KEY.encode() not in raw
    # A row copied to another user does not open.
    sealed = (await gov.fetch("SELECT sealed FROM mcp_credentials WHERE server = ?", ("jira",)))[0][0]
    await gov.transaction([("INSERT INTO mcp_credentials (project, user_id, server, kind, sealed, key_id, "
                            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            ("p", "mallory", "jira", "api_key", sealed, key_id(KEY_A), 0.0))])
    with pytest.raises(SealError):
        await store.credential("p", "mallory", "jira")
    assert await store.delete_credential("p", "alice", "jira")
    assert await store.credential("p", "alice", "jira") is None


async def test_mint_grant_revoke(gov: GovStore) -> None:
    store = store_of(gov)
    before = time.time()
    minted = await store.mint("p", "pack-1", "alice", 600)
    key = minted["key"]
    assert key.startswith("ik-mcp-") and minted["id"].startswith("mak_")
    grant = await store.grant(key)
    assert grant is not None
    assert (grant.id, grant.project, grant.pack, grant.user, grant.revoked) == (minted["id"], "p", "pack-1",
                                                                                "alice", False)
    assert before + 600 <= grant.expires_at <= time.time() + 600
    assert await store.grant(key + "x") is None
    assert await store.grant("ik-mcp-unknown") is None
    assert await store.grant("sk-not-mcp") is None
    listed = await store.access_keys("p")
    assert [k["id"] for k in listed] == [minted["id"]] and key not in repr(listed)
    assert await store.access_keys("q") == []
    assert not await store.revoke("q", minted["id"])  # another project's key
    assert (await store.grant(key)).revoked is False  # type: ignore[union-attr]
    assert await store.revoke("p", minted["id"])
    assert (await store.grant(key)).revoked is True  # type: ignore[union-attr]
    assert not await store.revoke(None, minted["id"])  # already revoked


async def test_delete_user_deletes_credentials_and_revokes_keys(gov: GovStore) -> None:
    store = store_of(gov)
    await store.add_user("p", "alice", "Alice")
    await store.add_user("p", "bob", "Bob")
    await store.put_credential("p", "alice", "github", "api_key", {"api_key": API_KEY})
    await store.put_credential("p", "bob", "github", "api_key", {"api_key": "bobs"})
    alice_key = (await store.mint("p", "pack-1", "alice", 600))["key"]
    bob_key = (await store.mint("p", "pack-1", "bob", 600))["key"]
    assert await store.delete_user("p", "alice")
    assert not await store.delete_user("p", "alice")
    assert await store.user("p", "alice") is None
    assert await store.credential("p", "alice", "github") is None
    assert await store.credentials("p", "alice") == []
    assert (await store.grant(alice_key)).revoked is True  # type: ignore[union-attr]
    assert (await store.grant(bob_key)).revoked is False  # type: ignore[union-attr]
    assert (await store.credential("p", "bob", "github")).api_key == "bobs"  # type: ignore[union-attr]


async def test_definitions_parse_admin_servers_and_packs(gov: GovStore) -> None:
    store = store_of(gov)
    await store.put_server("search", {"url": "https://search.example.com/mcp", "timeout_s": 12})
    await store.put_server("files", {"command": ["python", "-m", "files"], "env": {"ROOT": "/tmp"}})
    await store.put_pack("research", "p", {"project": "p", "tools": ["search/*", "files/read"],
                                           "rename": {"files/read": "read_file"}})
    await store.put_pack("plain", "p", {"project": "p", "tools": ["search/query"]})
    # A row that no longer parses (written behind the API's back) is skipped, the rest served.
    await gov.transaction([("INSERT INTO mcp_servers (name, spec, created_at) VALUES (?, ?, ?)",
                            ("broken", '{"transport": "sse"}', 0.0))])
    store.forget()
    servers, packs = await store.definitions()
    assert sorted(servers) == ["files", "search"]
    assert servers["search"].url == "https://search.example.com/mcp" and servers["search"].timeout_s == 12
    assert servers["search"].source == "admin" and servers["files"].command == ("python", "-m", "files")
    assert sorted(packs) == ["plain", "research"]
    assert packs["research"].tools == ("search/*", "files/read")
    assert packs["research"].rename == {"files/read": "read_file"} and packs["research"].project == "p"
    assert await store.delete_definition("mcp_packs", "id", "plain")
    assert sorted((await store.definitions())[1]) == ["research"]


# ------------------------------------------------------------------------------------------------ McpCallLog


def call(cid: str, at: float, project: str = "a", pack: str = "pack-1", status: str = "ok",
         guardrails: list[dict[str, object]] | None = None) -> ToolCall:
    return ToolCall(cid, at, project, "mak_1", pack, "alice", "search", "query", "query", duration_ms=1.5,
                    status=status, args_bytes=10, result_bytes=20, guardrails=guardrails)


async def test_call_log_newest_first_filtered_and_scoped(gov: GovStore) -> None:
    log = McpCallLog(gov, retention_days=None)
    now = time.time()
    detections: list[dict[str, object]] = [{"detector": "pii", "action": "redact", "entities": {"EMAIL": 2}}]
    log.submit(call("c1", now - 30))
    log.submit(call("c2", now - 20, pack="pack-2", status="error"))
    log.submit(call("c3", now - 10, guardrails=detections))
    log.submit(call("c4", now - 5, project="b"))
    await log.flush()
    assert log._pending == []
    rows = await log.calls("a", {}, 10, None)
    assert [r["id"] for r in rows] == ["c3", "c2", "c1"]
    assert rows[0]["guardrails"] == detections and rows[1]["guardrails"] is None
    assert rows[0]["user"] == "alice" and rows[0]["duration_ms"] == 1.5 and rows[0]["result_bytes"] == 20
    assert [r["id"] for r in await log.calls("a", {"tool_pack": "pack-2"}, 10, None)] == ["c2"]
    assert [r["id"] for r in await log.calls("a", {"status": "ok"}, 10, None)] == ["c3", "c1"]
    assert [r["id"] for r in await log.calls("a", {}, 1, None)] == ["c3"]
    assert [r["id"] for r in await log.calls("a", {}, 10, now - 15)] == ["c2", "c1"]
    assert [r["id"] for r in await log.calls("b", {}, 10, None)] == ["c4"]
    assert await log.calls("b", {"tool_pack": "pack-2"}, 10, None) == []
    assert await log.calls("c", {}, 10, None) == []
    assert [r["id"] for r in await log.calls(None, {}, 10, None)] == ["c4", "c3", "c2", "c1"]
    # calls() flushes first: what this worker holds is visible at once.
    log.submit(call("c5", now))
    assert (await log.calls("a", {}, 1, None))[0]["id"] == "c5"


async def test_hourly_series_count_what_the_summary_counts(gov: GovStore) -> None:
    log = McpCallLog(gov, retention_days=None)
    hour = 1_765_000_800 // 3600  # an exact hour
    now = hour * 3600 + 1800.0  # half past
    since = now - 86400.0
    for i, at in enumerate((since - 1, since + 1, since + 1900, now - 3599, now - 10, now - 5)):
        log.submit(call(f"c{i}", at, status="error" if i == 4 else "ok"))
    log.submit(call("other", now - 5, project="b"))
    await log.flush()
    series = await hourly(gov, "a", since, 25)
    counts, errors = series[("pack-1", "search", "query")]
    # Before the window: not counted; the first hour holds since + 1 only; hour 1 (since + 1900 is past it).
    assert counts[0] == 1 and counts[1] == 1 and counts[23] == 1 and counts[24] == 2 and sum(counts) == 5
    assert errors[24] == 1 and sum(errors) == 1
    (total,) = await summary(gov, "a", since)
    assert total["calls"] == sum(counts) and total["errors"] == sum(errors)
    assert list((await hourly(gov, None, since, 25)).keys()) == [("pack-1", "search", "query")]
    assert sum((await hourly(gov, None, since, 25))[("pack-1", "search", "query")][0]) == 6
    assert await hourly(gov, "c", since, 25) == {}


async def test_retention_purges_old_records(gov: GovStore) -> None:
    log = McpCallLog(gov, retention_days=1)
    now = time.time()
    log.submit(call("old", now - 2 * 86400))
    log.submit(call("new", now - 60))
    await log.flush()
    assert len(await log.calls("a", {}, 10, None)) == 2
    log._purged = 0
    await log._purge()
    assert [r["id"] for r in await log.calls("a", {}, 10, None)] == ["new"]
    # At most hourly: a second purge right away does nothing even with an old record present.
    log.submit(call("old2", now - 3 * 86400))
    await log._purge()
    assert [r["id"] for r in await log.calls("a", {}, 10, None)] == ["new", "old2"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_failed_flush_keeps_the_batch(gov: GovStore) -> None:
    broken = PostgresGovStore(pg_util.url("interlock_nowhere_" + os.urandom(3).hex(), port=_closed_port()))
    log = McpCallLog(broken, retention_days=None)
    now = time.time()
    log.submit(call("k1", now - 2))
    log.submit(call("k2", now - 1))
    try:
        await log.flush()
        assert [c.id for c in log._pending] == ["k1", "k2"]
        log.submit(call("k3", now))
        await log.flush()
        assert [c.id for c in log._pending] == ["k1", "k2", "k3"]  # kept, in order, nothing lost
        assert log.dropped == 0
    finally:
        await broken.close()
    log.gov = gov  # the store is back
    await log.flush()
    assert log._pending == []
    assert [r["id"] for r in await log.calls("a", {}, 10, None)] == ["k3", "k2", "k1"]


async def test_a_closed_sqlite_store_keeps_the_batch(tmp_path: Path) -> None:
    lite = SQLiteGovStore(tmp_path / "closed.db")
    lite.migrate()
    await lite.close()
    log = McpCallLog(lite, retention_days=None)
    log.submit(call("z1", time.time()))
    await log.flush()
    assert [c.id for c in log._pending] == ["z1"]  # the closed store refused the write: kept for next try
    assert log.dropped == 0


def test_disabled_log_keeps_nothing() -> None:
    log = McpCallLog(SQLiteGovStore.__new__(SQLiteGovStore), retention_days=None, enabled=False)
    log.submit(call("x", 0.0))
    assert log._pending == []


async def test_deleting_a_project_deletes_its_mcp_state(gov: GovStore) -> None:
    await ops.create_project(gov, {"id": "acme"})
    store = McpStore(gov, Sealer(KEY_A), SECRET)
    await store.add_user("acme", "u1", "")
    await store.put_credential("acme", "u1", "crm", "api_key", {"api_key": "k"})
    minted = await store.mint("acme", "support", "u1", 600)
    assert await gov.delete_project("acme")
    store.forget()
    assert await store.user("acme", "u1") is None and await store.credential("acme", "u1", "crm") is None
    grant = await store.grant(minted["key"])
    assert grant is not None and grant.revoked
