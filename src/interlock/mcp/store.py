"""Registered users, sealed credentials, access keys and admin-defined servers and packs (governance migration 5).

Everything lives in the governance database (SQLite in the state directory, or PostgreSQL), through
``GovStore.fetch``/``transaction``. The endpoint reads on every call, so reads are cached per process: users,
credentials and access keys for at most ``CACHE_S`` (5 s), definitions for ``DEFINITIONS_S`` (2 s). A change
made through this process's store drops its cache at once; other workers and replicas see it within those
bounds (a revoked access key works at most 5 s longer elsewhere). Credentials are sealed (``sealing.py``)
before they reach SQL and opened only when a call needs them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.governance.auth import digest
from interlock.governance.store import GovStore
from interlock.mcp.auth import ACCESS_KEY_PREFIX
from interlock.mcp.model import (
    AccessGrant,
    Credential,
    PackSpec,
    RegisteredUser,
    ServerSpec,
    SpecError,
    parse_pack,
    parse_server,
)
from interlock.mcp.sealing import Sealer, aad

CACHE_S = 5.0
DEFINITIONS_S = 2.0
_MISSING = object()


class McpStore:
    def __init__(self, gov: GovStore, sealer: Sealer, secret: bytes, clock: Clock = SYSTEM_CLOCK,
                 config_servers: Mapping[str, ServerSpec] | None = None) -> None:
        self.gov = gov
        self.sealer = sealer
        self.secret = secret
        self.clock = clock
        #: The config's servers: admin packs may draw on them.
        self.config_servers = dict(config_servers or {})
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._definitions: tuple[float, tuple[dict[str, ServerSpec], dict[str, PackSpec]]] | None = None

    # ------------------------------------------------------------------------- cached reads (hot path)

    async def _cached(self, key: tuple[Any, ...], sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_S:
            rows: list[tuple[Any, ...]] = hit[1]
            return rows
        rows = await self.gov.fetch(sql, args)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, rows)
        return rows

    def forget(self) -> None:
        self._cache.clear()
        self._definitions = None

    async def user(self, project: str, user_id: str) -> RegisteredUser | None:
        rows = await self._cached(("user", project, user_id),
                                  "SELECT project, id, name, created_at FROM mcp_users WHERE project = ? AND id = ?",
                                  (project, user_id))
        return RegisteredUser(rows[0][0], rows[0][1], rows[0][2], float(rows[0][3])) if rows else None

    async def credential(self, project: str, user_id: str, server: str) -> Credential | None:
        rows = await self._cached(
            ("cred", project, user_id, server),
            "SELECT kind, sealed, updated_at FROM mcp_credentials WHERE project = ? AND user_id = ? AND server = ?",
            (project, user_id, server))
        if not rows:
            return None
        kind, sealed, updated = rows[0]
        value = orjson.loads(self.sealer.open(sealed, aad(project, user_id, server)))
        if kind == "oauth":
            return Credential("oauth", oauth=value, updated_at=float(updated))
        return Credential(kind, api_key=value.get("api_key"), updated_at=float(updated))

    async def grant(self, key: str) -> AccessGrant | None:
        if not key.startswith(ACCESS_KEY_PREFIX):
            return None
        rows = await self._cached(("grant", digest(self.secret, key)),
                                  "SELECT id, project, pack, user_id, expires_at, revoked_at FROM mcp_access_keys "
                                  "WHERE digest = ?", (digest(self.secret, key),))
        if not rows:
            return None
        r = rows[0]
        return AccessGrant(r[0], r[1], r[2], r[3], float(r[4]), revoked=r[5] is not None)

    async def definitions(self) -> tuple[dict[str, ServerSpec], dict[str, PackSpec]]:
        now = time.monotonic()
        if self._definitions is not None and now - self._definitions[0] < DEFINITIONS_S:
            return self._definitions[1]
        servers: dict[str, ServerSpec] = {}
        for name, spec in await self.gov.fetch("SELECT name, spec FROM mcp_servers ORDER BY name"):
            try:
                servers[name] = parse_server(name, orjson.loads(spec), source="admin")
            except SpecError:
                continue  # checked when stored; a row that no longer parses is skipped, not fatal
        packs: dict[str, PackSpec] = {}
        known = {**servers, **self.config_servers}
        for pid, spec in await self.gov.fetch("SELECT id, spec FROM mcp_packs ORDER BY id"):
            try:
                packs[pid] = parse_pack(pid, orjson.loads(spec), known, source="admin")
            except SpecError:
                continue
        self._definitions = (now, (servers, packs))
        return servers, packs

    # ------------------------------------------------------------------------------- users

    async def add_user(self, project: str, user_id: str, name: str) -> RegisteredUser:
        user = RegisteredUser(project, user_id, name, self.clock.time())
        await self.gov.transaction([("INSERT INTO mcp_users (project, id, name, created_at) VALUES (?, ?, ?, ?)",
                                     (project, user_id, name, user.created_at))])
        self.forget()
        return user

    async def users(self, project: str | None, after: str, limit: int) -> list[RegisteredUser]:
        where, args = ("WHERE project = ? AND id > ?", (project, after)) if project else ("WHERE id > ?", (after,))
        rows = await self.gov.fetch(f"SELECT project, id, name, created_at FROM mcp_users {where} "
                                    f"ORDER BY id LIMIT {int(limit)}", args)
        return [RegisteredUser(r[0], r[1], r[2], float(r[3])) for r in rows]

    async def delete_user(self, project: str, user_id: str) -> bool:
        counts = await self.gov.transaction([
            ("DELETE FROM mcp_users WHERE project = ? AND id = ?", (project, user_id)),
            ("DELETE FROM mcp_credentials WHERE project = ? AND user_id = ?", (project, user_id)),
            ("UPDATE mcp_access_keys SET revoked_at = ? WHERE project = ? AND user_id = ? AND revoked_at IS NULL",
             (self.clock.time(), project, user_id))])
        self.forget()
        return counts[0] > 0

    # -------------------------------------------------------------------------- credentials

    async def put_credential(self, project: str, user_id: str, server: str, kind: str,
                             value: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock.time()
        sealed = self.sealer.seal(orjson.dumps(dict(value)), aad(project, user_id, server))
        expires = value.get("expires_at") if kind == "oauth" else None
        await self.gov.transaction([
            ("DELETE FROM mcp_credentials WHERE project = ? AND user_id = ? AND server = ?",
             (project, user_id, server)),
            ("INSERT INTO mcp_credentials (project, user_id, server, kind, sealed, key_id, expires_at, updated_at) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             (project, user_id, server, kind, sealed, self.sealer.current_id, expires, now))])
        self._cache.pop(("cred", project, user_id, server), None)
        return {"server": server, "kind": kind, "updated_at": now, "expires_at": expires}

    async def save_oauth_tokens(self, project: str, user_id: str, server: str, tokens: Mapping[str, Any]) -> None:
        await self.put_credential(project, user_id, server, "oauth", tokens)

    async def credentials(self, project: str, user_id: str) -> list[dict[str, Any]]:
        rows = await self.gov.fetch("SELECT server, kind, updated_at, expires_at FROM mcp_credentials "
                                    "WHERE project = ? AND user_id = ? ORDER BY server", (project, user_id))
        return [{"server": r[0], "kind": r[1], "updated_at": r[2], "expires_at": r[3]} for r in rows]

    async def credential_kinds(self, project: str | None) -> dict[tuple[str, str], list[str]]:
        """(project, user) → "server (kind)" for every stored credential, in one query (never a secret)."""
        where, args = ("WHERE project = ?", (project,)) if project is not None else ("", ())
        out: dict[tuple[str, str], list[str]] = {}
        for p, u, server, kind in await self.gov.fetch(
                f"SELECT project, user_id, server, kind FROM mcp_credentials {where} ORDER BY server", args):
            out.setdefault((p, u), []).append(f"{server} ({kind})")
        return out

    async def delete_credential(self, project: str, user_id: str, server: str) -> bool:
        counts = await self.gov.transaction([("DELETE FROM mcp_credentials WHERE project = ? AND user_id = ? "
                                              "AND server = ?", (project, user_id, server))])
        self._cache.pop(("cred", project, user_id, server), None)
        return counts[0] > 0

    async def reseal(self) -> int:
        """Seal every credential not under the current key again (after a rotation); returns how many."""
        rows = await self.gov.fetch("SELECT project, user_id, server, sealed FROM mcp_credentials WHERE key_id <> ?",
                                    (self.sealer.current_id,))
        stmts: list[tuple[str, tuple[Any, ...]]] = []
        for project, user_id, server, sealed in rows:
            row_aad = aad(project, user_id, server)
            fresh = self.sealer.seal(self.sealer.open(sealed, row_aad), row_aad)
            stmts.append(("UPDATE mcp_credentials SET sealed = ?, key_id = ? WHERE project = ? AND user_id = ? "
                          "AND server = ?", (fresh, self.sealer.current_id, project, user_id, server)))
        if stmts:
            await self.gov.transaction(stmts)
        self.forget()
        return len(stmts)

    # -------------------------------------------------------------------------- access keys

    async def mint(self, project: str, pack: str, user_id: str, ttl_s: int) -> dict[str, Any]:
        key = ACCESS_KEY_PREFIX + secrets.token_urlsafe(32)
        kid = "mak_" + secrets.token_hex(8)
        now = self.clock.time()
        expires = now + ttl_s
        await self.gov.transaction([(
            "INSERT INTO mcp_access_keys (id, digest, prefix, project, pack, user_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (kid, digest(self.secret, key), key[:12], project, pack, user_id,
                                                now, expires))])
        return {"id": kid, "key": key, "tool_pack": pack, "registered_user": user_id, "project": project,
                "created_at": now, "expires_at": expires}

    async def access_keys(self, project: str | None) -> list[dict[str, Any]]:
        where, args = ("WHERE project = ?", (project,)) if project else ("", ())
        rows = await self.gov.fetch("SELECT id, prefix, project, pack, user_id, created_at, expires_at, revoked_at "
                                    f"FROM mcp_access_keys {where} ORDER BY created_at DESC LIMIT 1000", args)
        return [{"id": r[0], "prefix": r[1], "project": r[2], "tool_pack": r[3], "registered_user": r[4],
                 "created_at": r[5], "expires_at": r[6], "revoked_at": r[7]} for r in rows]

    async def revoke(self, project: str | None, kid: str) -> bool:
        sql = "UPDATE mcp_access_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        args: tuple[Any, ...] = (self.clock.time(), kid)
        if project is not None:
            sql += " AND project = ?"
            args = (*args, project)
        counts = await self.gov.transaction([(sql, args)])
        self.forget()
        return counts[0] > 0

    async def revoke_pack(self, pack: str) -> int:
        counts = await self.gov.transaction([("UPDATE mcp_access_keys SET revoked_at = ? WHERE pack = ? AND "
                                              "revoked_at IS NULL", (self.clock.time(), pack))])
        self.forget()
        return counts[0]

    # ---------------------------------------------------------------------- servers and packs

    async def put_server(self, name: str, spec: Mapping[str, Any]) -> None:
        await self.gov.transaction([
            ("DELETE FROM mcp_servers WHERE name = ?", (name,)),
            ("INSERT INTO mcp_servers (name, spec, created_at) VALUES (?, ?, ?)",
             (name, orjson.dumps(dict(spec)).decode(), self.clock.time()))])
        self._definitions = None

    async def put_pack(self, pack_id: str, project: str, spec: Mapping[str, Any]) -> None:
        await self.gov.transaction([
            ("DELETE FROM mcp_packs WHERE id = ?", (pack_id,)),
            ("INSERT INTO mcp_packs (id, project, spec, created_at) VALUES (?, ?, ?, ?)",
             (pack_id, project, orjson.dumps(dict(spec)).decode(), self.clock.time()))])
        self._definitions = None

    async def delete_definition(self, table: str, column: str, item_id: str) -> bool:
        assert table in ("mcp_servers", "mcp_packs") and column in ("name", "id")
        counts = await self.gov.transaction([(f"DELETE FROM {table} WHERE {column} = ?", (item_id,))])
        self._definitions = None
        return counts[0] > 0
