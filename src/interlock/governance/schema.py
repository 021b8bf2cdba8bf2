"""Governance tables and their migrations (component ``governance``), for SQLite and PostgreSQL.

``state.migrations`` runs them and records them in ``schema_migrations``
beside the other components of the same database, so governance and the
request log evolve independently; databases made before that table existed
recorded governance's versions in ``governance_schema``, which is read once.

``gov_version`` holds one counter that every change of a definition bumps in
the same transaction: gateways poll it (one indexed read) and reload the
definitions only when it moved. ``gov_spend`` is the durable copy of budget
spend per counter and period, so budgets survive restarts.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from interlock.state.migrations import Schema, pg_table_version, sqlite_table_version

#: (version, SQLite script, PostgreSQL script). Statements are separated by ';'.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, """
CREATE TABLE IF NOT EXISTS gov_projects (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, log_level TEXT, allowed_models TEXT NOT NULL DEFAULT '[]',
    allowed_vendors TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gov_keys (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL, prefix TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
    projects TEXT NOT NULL DEFAULT '[]', allowed_models TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL,
    expires_at REAL, revoked_at REAL, replaced_by TEXT
);
CREATE INDEX IF NOT EXISTS gov_keys_project ON gov_keys (project);
CREATE TABLE IF NOT EXISTS gov_budgets (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, subject TEXT NOT NULL, amount_micro INTEGER NOT NULL,
    period TEXT NOT NULL, mode TEXT NOT NULL, thresholds TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gov_limits (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, subject TEXT NOT NULL, rpm INTEGER, tpm INTEGER, concurrent INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gov_spend (
    budget_id TEXT NOT NULL, counter TEXT NOT NULL, period TEXT NOT NULL, spent_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (budget_id, counter, period)
);
CREATE TABLE IF NOT EXISTS gov_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT OR IGNORE INTO gov_version (id, version) VALUES (1, 1)
""", """
CREATE TABLE IF NOT EXISTS gov_projects (
    id text PRIMARY KEY, name text NOT NULL, log_level text, allowed_models text NOT NULL DEFAULT '[]',
    allowed_vendors text NOT NULL DEFAULT '[]', created_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS gov_keys (
    id text PRIMARY KEY, project text NOT NULL, name text NOT NULL, prefix text NOT NULL, digest text NOT NULL UNIQUE,
    projects text NOT NULL DEFAULT '[]', allowed_models text NOT NULL DEFAULT '[]',
    created_at double precision NOT NULL, expires_at double precision, revoked_at double precision, replaced_by text
);
CREATE INDEX IF NOT EXISTS gov_keys_project ON gov_keys (project);
CREATE TABLE IF NOT EXISTS gov_budgets (
    id text PRIMARY KEY, scope text NOT NULL, subject text NOT NULL, amount_micro bigint NOT NULL,
    period text NOT NULL, mode text NOT NULL, thresholds text NOT NULL, created_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS gov_limits (
    id text PRIMARY KEY, scope text NOT NULL, subject text NOT NULL, rpm bigint, tpm bigint, concurrent bigint,
    created_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS gov_spend (
    budget_id text NOT NULL, counter text NOT NULL, period text NOT NULL, spent_nano bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (budget_id, counter, period)
);
CREATE TABLE IF NOT EXISTS gov_version (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL);
INSERT INTO gov_version (id, version) VALUES (1, 1) ON CONFLICT (id) DO NOTHING
"""),
    # Zero data retention per project (``Project.zero_data_retention``); 0/1 in both stores.
    (2, "ALTER TABLE gov_projects ADD COLUMN zero_data_retention INTEGER NOT NULL DEFAULT 0",
     "ALTER TABLE gov_projects ADD COLUMN IF NOT EXISTS zero_data_retention integer NOT NULL DEFAULT 0"),
    # Web console sessions (``console/sessions.py``): the cookie token's SHA-256, never the token; the key's
    # HMAC digest, re-resolved on each use so a revoked or expired key ends its sessions.
    (3, """
CREATE TABLE IF NOT EXISTS console_sessions (
    token_digest TEXT PRIMARY KEY, key_digest TEXT NOT NULL, csrf TEXT NOT NULL, created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_expires ON console_sessions (expires_at)
""", """
CREATE TABLE IF NOT EXISTS console_sessions (
    token_digest text PRIMARY KEY, key_digest text NOT NULL, csrf text NOT NULL,
    created_at double precision NOT NULL, expires_at double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_expires ON console_sessions (expires_at)
"""),
    # Guardrail settings per project (``Project.guardrails``): JSON text, NULL for none (as migration 2's flag).
    (4, "ALTER TABLE gov_projects ADD COLUMN guardrails TEXT",
     "ALTER TABLE gov_projects ADD COLUMN IF NOT EXISTS guardrails text"),
    # The MCP gateway (``mcp/store.py``): servers and tool packs created through the admin API (the config's are
    # not stored), registered users per project, their credentials sealed with AES-256-GCM (``mcp/sealing.py``,
    # never plaintext), access keys by HMAC digest, and the tool-call log.
    (5, """
CREATE TABLE IF NOT EXISTS mcp_servers (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mcp_packs (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mcp_users (
    project TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (project, id)
);
CREATE TABLE IF NOT EXISTS mcp_credentials (
    project TEXT NOT NULL, user_id TEXT NOT NULL, server TEXT NOT NULL, kind TEXT NOT NULL, sealed TEXT NOT NULL,
    key_id TEXT NOT NULL, expires_at REAL, updated_at REAL NOT NULL, PRIMARY KEY (project, user_id, server)
);
CREATE TABLE IF NOT EXISTS mcp_access_keys (
    id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, project TEXT NOT NULL, pack TEXT NOT NULL,
    user_id TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL, revoked_at REAL
);
CREATE INDEX IF NOT EXISTS mcp_access_keys_project ON mcp_access_keys (project);
CREATE TABLE IF NOT EXISTS mcp_calls (
    id TEXT PRIMARY KEY, at REAL NOT NULL, project TEXT NOT NULL, key_id TEXT NOT NULL, pack TEXT NOT NULL,
    user_id TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, name TEXT NOT NULL, duration_ms REAL NOT NULL,
    status TEXT NOT NULL, error TEXT, args_bytes INTEGER NOT NULL, result_bytes INTEGER NOT NULL, arguments TEXT,
    result TEXT, guardrails TEXT
);
CREATE INDEX IF NOT EXISTS mcp_calls_project_at ON mcp_calls (project, at);
CREATE INDEX IF NOT EXISTS mcp_calls_at ON mcp_calls (at)
""", """
CREATE TABLE IF NOT EXISTS mcp_servers (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at double precision NOT NULL);
CREATE TABLE IF NOT EXISTS mcp_packs (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, spec TEXT NOT NULL, created_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS mcp_users (
    project TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, created_at double precision NOT NULL, PRIMARY KEY (project, id)
);
CREATE TABLE IF NOT EXISTS mcp_credentials (
    project TEXT NOT NULL, user_id TEXT NOT NULL, server TEXT NOT NULL, kind TEXT NOT NULL, sealed TEXT NOT NULL,
    key_id TEXT NOT NULL, expires_at double precision, updated_at double precision NOT NULL, PRIMARY KEY (project, user_id, server)
);
CREATE TABLE IF NOT EXISTS mcp_access_keys (
    id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, project TEXT NOT NULL, pack TEXT NOT NULL,
    user_id TEXT NOT NULL, created_at double precision NOT NULL, expires_at double precision NOT NULL, revoked_at double precision
);
CREATE INDEX IF NOT EXISTS mcp_access_keys_project ON mcp_access_keys (project);
CREATE TABLE IF NOT EXISTS mcp_calls (
    id TEXT PRIMARY KEY, at double precision NOT NULL, project TEXT NOT NULL, key_id TEXT NOT NULL, pack TEXT NOT NULL,
    user_id TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, name TEXT NOT NULL, duration_ms double precision NOT NULL,
    status TEXT NOT NULL, error TEXT, args_bytes bigint NOT NULL, result_bytes bigint NOT NULL, arguments TEXT,
    result TEXT, guardrails TEXT
);
CREATE INDEX IF NOT EXISTS mcp_calls_project_at ON mcp_calls (project, at);
CREATE INDEX IF NOT EXISTS mcp_calls_at ON mcp_calls (at)
"""),
    # MCP tool calls per minute on a key or project (``Limit.tool_calls_per_minute``).
    (6, "ALTER TABLE gov_limits ADD COLUMN tool_calls_per_minute INTEGER",
     "ALTER TABLE gov_limits ADD COLUMN IF NOT EXISTS tool_calls_per_minute bigint"),
    # The audit log of administrative changes (``governance/audit.py``): who, what, when, before and after.
    (7, """
CREATE TABLE IF NOT EXISTS gov_audit (
    id TEXT PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL, via TEXT NOT NULL, action TEXT NOT NULL,
    target_kind TEXT NOT NULL, target_id TEXT NOT NULL, project TEXT, before TEXT, after TEXT
);
CREATE INDEX IF NOT EXISTS gov_audit_at ON gov_audit (at, id);
CREATE INDEX IF NOT EXISTS gov_audit_project_at ON gov_audit (project, at, id)
""", """
CREATE TABLE IF NOT EXISTS gov_audit (
    id TEXT PRIMARY KEY, at double precision NOT NULL, actor TEXT NOT NULL, via TEXT NOT NULL, action TEXT NOT NULL,
    target_kind TEXT NOT NULL, target_id TEXT NOT NULL, project TEXT, before TEXT, after TEXT
);
CREATE INDEX IF NOT EXISTS gov_audit_at ON gov_audit (at, id);
CREATE INDEX IF NOT EXISTS gov_audit_project_at ON gov_audit (project, at, id)
"""),
    # Facts every replica sharing the store must agree on: the key-hashing secret's verifier
    # (``auth.check_secret``), so a replica started with another INTERLOCK_SECRET refuses to start.
    (8, "CREATE TABLE IF NOT EXISTS gov_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
     "CREATE TABLE IF NOT EXISTS gov_meta (key text PRIMARY KEY, value text NOT NULL)"),
    # Data residency (``Project.regions``, ``ApiKey.regions``): JSON lists of region or jurisdiction names.
    (9, """
ALTER TABLE gov_projects ADD COLUMN regions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE gov_keys ADD COLUMN regions TEXT NOT NULL DEFAULT '[]'
""", """
ALTER TABLE gov_projects ADD COLUMN IF NOT EXISTS regions text NOT NULL DEFAULT '[]';
ALTER TABLE gov_keys ADD COLUMN IF NOT EXISTS regions text NOT NULL DEFAULT '[]'
"""),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _sqlite_legacy(conn: sqlite3.Connection) -> int:
    return sqlite_table_version(conn, "governance_schema")


async def _pg_legacy(conn: Any) -> int:
    return await pg_table_version(conn, "governance_schema")


SCHEMA = Schema("governance", sqlite=tuple((v, lite) for v, lite, _ in MIGRATIONS),
                postgres=tuple((v, pg) for v, _, pg in MIGRATIONS),
                sqlite_legacy=_sqlite_legacy, postgres_legacy=_pg_legacy)
