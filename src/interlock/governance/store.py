"""Where governance definitions and durable budget spend live: SQLite by default, PostgreSQL with ``store:``.

Both backends run the same SQL (written with ``?`` placeholders, renumbered to
``$n`` for PostgreSQL) behind one asynchronous interface: the admin API and the
gateway's poller call it from the event loop, the CLI through ``asyncio.run``.
SQLite work runs in a worker thread so a slow disk never blocks requests.
Every change of a definition bumps ``gov_version`` in the same transaction;
that is how every worker and replica learns, within a poll interval, that it
must reload. Connections and migrations (``schema.SCHEMA``) are the state
layer's (``state.sqlite``, ``state.postgres``, ``state.migrations``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from interlock.governance.model import ApiKey, Budget, DefinitionError, Definitions, Limit, Project
from interlock.governance.schema import SCHEMA
from interlock.guardrails.settings import ProjectGuardrails, parse_project
from interlock.state.postgres import PgPool
from interlock.state.sqlite import SQLiteDB

Statement = tuple[str, Sequence[Any]]
SpendKey = tuple[str, str, str]  # (budget id, counter, period)

_BUMP = ("UPDATE gov_version SET version = version + 1 WHERE id = 1", ())
_SPEND_UPSERT = ("INSERT INTO gov_spend (budget_id, counter, period, spent_nano) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (budget_id, counter, period) DO UPDATE SET spent_nano = gov_spend.spent_nano + "
                 "excluded.spent_nano")
_PROJECT_COLS = ("id, name, log_level, allowed_models, allowed_vendors, created_at, zero_data_retention, "
                 "guardrails, regions")
_KEY_COLS = ("id, project, name, prefix, digest, projects, allowed_models, created_at, expires_at, revoked_at, "
             "replaced_by, regions")
_BUDGET_COLS = "id, scope, subject, amount_micro, period, mode, thresholds, created_at"
_LIMIT_COLS = "id, scope, subject, rpm, tpm, concurrent, created_at, tool_calls_per_minute"


class Duplicate(ValueError):
    """A unique constraint refused the write (the id or digest exists)."""


def _names(text: Any) -> tuple[str, ...]:
    return tuple(orjson.loads(text)) if text else ()


def _json(values: Iterable[Any]) -> str:
    return orjson.dumps(list(values)).decode()


def project_row(p: Project) -> tuple[Any, ...]:
    guardrails = None if p.guardrails is None else orjson.dumps(p.guardrails.to_json()).decode()
    return (p.id, p.name, p.log_level, _json(p.allowed_models), _json(p.allowed_vendors), p.created_at,
            int(p.zero_data_retention), guardrails, _json(p.regions))


def _guardrails(pid: str, text: str | None) -> ProjectGuardrails | None:
    """A stored setting, parsed by the rules it was checked with when written (a hand-edited row that
    breaks them fails the load naming the project, rather than being ignored)."""
    if not text:
        return None

    def fail(path: tuple[str, ...], message: str) -> Exception:
        return DefinitionError(".".join(("guardrails", *path)), f"project {pid}'s stored setting: {message}")

    found = parse_project(orjson.loads(text), fail)
    return None if found.empty else found


def key_row(k: ApiKey) -> tuple[Any, ...]:
    return (k.id, k.project, k.name, k.prefix, k.digest, _json(k.projects), _json(k.allowed_models), k.created_at,
            k.expires_at, k.revoked_at, k.replaced_by, _json(k.regions))


def budget_row(b: Budget) -> tuple[Any, ...]:
    return (b.id, b.scope, b.subject, b.amount_micro, b.period, b.mode, _json(b.thresholds), b.created_at)


def limit_row(lim: Limit) -> tuple[Any, ...]:
    return (lim.id, lim.scope, lim.subject, lim.rpm, lim.tpm, lim.concurrent, lim.created_at,
            lim.tool_calls_per_minute)


def _project(r: Sequence[Any]) -> Project:
    return Project(r[0], r[1], r[2], _names(r[3]), _names(r[4]), float(r[5]), bool(r[6]), _guardrails(r[0], r[7]),
                   _names(r[8]))


def _key(r: Sequence[Any]) -> ApiKey:
    return ApiKey(r[0], r[1], r[2], r[3], r[4], _names(r[5]), _names(r[6]), float(r[7]),
                  None if r[8] is None else float(r[8]), None if r[9] is None else float(r[9]), r[10], _names(r[11]))


def _budget(r: Sequence[Any]) -> Budget:
    return Budget(r[0], r[1], r[2], int(r[3]), r[4], r[5], tuple(int(t) for t in _names(r[6])), float(r[7]))


def _limit(r: Sequence[Any]) -> Limit:
    return Limit(r[0], r[1], r[2], r[3], r[4], r[5], float(r[6]), r[7])


def insert(table: str, columns: str, row: tuple[Any, ...]) -> Statement:
    return f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' for _ in row)})", row


class GovStore:
    """The SQL every backend shares; backends supply :meth:`fetch` and :meth:`transaction`."""

    kind = "abstract"
    #: Called after every change of definitions has committed (``propagate.Propagation.announce``).
    on_change: Callable[[], Awaitable[None]] | None = None

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def transaction(self, stmts: Sequence[Statement]) -> list[int]:
        """Run the statements atomically; returns each one's row count. Raises :class:`Duplicate`."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def release(self) -> None:
        """Drop connections bound to the running event loop (after the start-up load's short-lived loop)."""

    async def change(self, stmts: Sequence[Statement]) -> list[int]:
        """A change of definitions: the statements plus the version bump, in one transaction (then announced)."""
        counts = (await self.transaction([*stmts, _BUMP]))[:-1]
        if self.on_change is not None:
            await self.on_change()
        return counts

    async def meta(self, key: str, default: str) -> str:
        """The stored value of ``key``, storing ``default`` first when there is none (the first writer wins)."""
        await self.transaction([("INSERT INTO gov_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                                 (key, default))])
        rows = await self.fetch("SELECT value FROM gov_meta WHERE key = ?", (key,))
        return str(rows[0][0])

    async def version(self) -> int:
        rows = await self.fetch("SELECT version FROM gov_version WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    async def load(self) -> Definitions:
        version = await self.version()
        projects = [_project(r) for r in await self.fetch(f"SELECT {_PROJECT_COLS} FROM gov_projects")]
        keys = [_key(r) for r in await self.fetch(f"SELECT {_KEY_COLS} FROM gov_keys")]
        budgets = [_budget(r) for r in await self.fetch(f"SELECT {_BUDGET_COLS} FROM gov_budgets")]
        limits = [_limit(r) for r in await self.fetch(f"SELECT {_LIMIT_COLS} FROM gov_limits")]
        return Definitions.build(version, projects, keys, budgets, limits)

    # -------------------------------------------------------------- definitions

    async def add_project(self, p: Project) -> None:
        await self.change([insert("gov_projects", _PROJECT_COLS, project_row(p))])

    async def update_project(self, p: Project) -> bool:
        row = project_row(p)
        n = await self.change([("UPDATE gov_projects SET name = ?, log_level = ?, allowed_models = ?, "
                                "allowed_vendors = ?, zero_data_retention = ?, guardrails = ?, regions = ? "
                                "WHERE id = ?", (*row[1:5], row[6], row[7], row[8], p.id))])
        return n[0] > 0

    async def delete_project(self, pid: str) -> bool:
        """Deletes the project with its keys and every budget and limit on them, and its MCP registered users,
        their credentials and its admin-created tool packs (its MCP access keys are revoked)."""
        keys = [r[0] for r in await self.fetch("SELECT id FROM gov_keys WHERE project = ?", (pid,))]
        stmts: list[Statement] = [("DELETE FROM gov_projects WHERE id = ?", (pid,)),
                                  ("DELETE FROM gov_keys WHERE project = ?", (pid,)),
                                  ("DELETE FROM gov_budgets WHERE scope = 'project' AND subject = ?", (pid,)),
                                  ("DELETE FROM gov_limits WHERE scope = 'project' AND subject = ?", (pid,)),
                                  ("DELETE FROM mcp_users WHERE project = ?", (pid,)),
                                  ("DELETE FROM mcp_credentials WHERE project = ?", (pid,)),
                                  ("DELETE FROM mcp_packs WHERE project = ?", (pid,)),
                                  ("UPDATE mcp_access_keys SET revoked_at = ? WHERE project = ? AND revoked_at IS "
                                   "NULL", (time.time(), pid))]
        for kid in keys:
            stmts.append(("DELETE FROM gov_budgets WHERE scope = 'key' AND subject = ?", (kid,)))
            stmts.append(("DELETE FROM gov_limits WHERE scope = 'key' AND subject = ?", (kid,)))
        return (await self.change(stmts))[0] > 0

    async def add_key(self, k: ApiKey, extra: Sequence[Statement] = ()) -> None:
        await self.change([insert("gov_keys", _KEY_COLS, key_row(k)), *extra])

    async def revoke_key(self, kid: str, at: float) -> bool:
        n = await self.change([("UPDATE gov_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                (at, kid))])
        return n[0] > 0

    async def rotate_key(self, old: ApiKey, new: ApiKey, old_expires_at: float) -> None:
        expires = old_expires_at if old.expires_at is None else min(old.expires_at, old_expires_at)
        await self.change([insert("gov_keys", _KEY_COLS, key_row(new)),
                           ("UPDATE gov_keys SET expires_at = ?, replaced_by = ? WHERE id = ?",
                            (expires, new.id, old.id))])

    async def add_budget(self, b: Budget) -> None:
        await self.change([insert("gov_budgets", _BUDGET_COLS, budget_row(b))])

    async def add_limit(self, lim: Limit) -> None:
        await self.change([insert("gov_limits", _LIMIT_COLS, limit_row(lim))])

    async def update_budget(self, b: Budget) -> bool:
        """A budget's amount, period, mode and thresholds (its id, scope and subject, and so its spend, stay)."""
        row = budget_row(b)
        n = await self.change([("UPDATE gov_budgets SET amount_micro = ?, period = ?, mode = ?, thresholds = ? "
                                "WHERE id = ?", (*row[3:7], b.id))])
        return n[0] > 0

    async def update_limit(self, lim: Limit) -> bool:
        n = await self.change([("UPDATE gov_limits SET rpm = ?, tpm = ?, concurrent = ?, tool_calls_per_minute = ? "
                                "WHERE id = ?", (lim.rpm, lim.tpm, lim.concurrent, lim.tool_calls_per_minute,
                                                 lim.id))])
        return n[0] > 0

    async def delete(self, table: str, item_id: str) -> bool:
        assert table in ("gov_budgets", "gov_limits")
        return (await self.change([(f"DELETE FROM {table} WHERE id = ?", (item_id,))]))[0] > 0

    # -------------------------------------------------------------- spend

    async def add_spend(self, deltas: dict[SpendKey, int]) -> None:
        """Add settled spend (nano-USD) to the durable counters; sorted so concurrent writers lock in order."""
        if deltas:
            await self.transaction([(_SPEND_UPSERT, (*k, v)) for k, v in sorted(deltas.items()) if v])

    async def spend(self, periods: Iterable[str]) -> dict[SpendKey, int]:
        wanted = sorted(set(periods))
        rows = await self.fetch(f"SELECT budget_id, counter, period, spent_nano FROM gov_spend WHERE period IN "
                                f"({', '.join('?' for _ in wanted)})", wanted)
        return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


class SQLiteGovStore(GovStore):
    """Governance tables in the state directory's ``interlock.db`` (on a connection of its own)."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = SQLiteDB(path, schemas=(SCHEMA,))

    def migrate(self) -> int:
        return self.db.migrate((SCHEMA,))[SCHEMA.component]

    def fetch_sync(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.db.locked() as conn:
            return [tuple(r) for r in conn.execute(sql, tuple(args)).fetchall()]

    def transaction_sync(self, stmts: Sequence[Statement]) -> list[int]:
        try:
            with self.db.transaction() as conn:  # rolled back on any failure (a value sqlite cannot bind, too)
                return [conn.execute(sql, tuple(args)).rowcount for sql, args in stmts]
        except sqlite3.IntegrityError as exc:
            raise Duplicate(str(exc)) from None

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.fetch_sync, sql, args)

    async def transaction(self, stmts: Sequence[Statement]) -> list[int]:
        return await asyncio.to_thread(self.transaction_sync, stmts)

    async def close(self) -> None:
        self.db.close()


def _dollar(sql: str) -> str:
    parts = sql.split("?")
    out = parts[0]
    for i, part in enumerate(parts[1:], 1):
        out += f"${i}" + part
    return out


class PostgresGovStore(GovStore):
    """Governance tables in PostgreSQL. The pool belongs to the event loop that opened it.

    The gateway loads its definitions once before serving (in a short-lived
    loop) and polls from its serving loop, so a pool opened in another loop is
    dropped and a new one opened where it is needed.
    """

    kind = "postgresql"

    def __init__(self, url: str, *, max_size: int = 2) -> None:
        self.url = url
        self._pool = PgPool(url, (SCHEMA,), max_size=max_size, per_loop=True)

    async def _get_pool(self) -> Any:
        return await self._pool.get()

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        pool = await self._get_pool()
        return [tuple(r.values()) for r in await pool.fetch(_dollar(sql), *args)]

    async def transaction(self, stmts: Sequence[Statement]) -> list[int]:
        # Imported here: only for a PostgreSQL store.
        import asyncpg

        pool = await self._get_pool()
        counts: list[int] = []
        try:
            async with pool.acquire() as conn, conn.transaction():
                for sql, args in stmts:
                    status = await conn.execute(_dollar(sql), *args)
                    tail = status.rsplit(" ", 1)[-1]
                    counts.append(int(tail) if tail.isdigit() else 0)
        except asyncpg.UniqueViolationError as exc:
            raise Duplicate(str(exc)) from None
        return counts

    async def release(self) -> None:
        await self.close()

    async def close(self) -> None:
        await self._pool.close()


def open_store(store_url: str | None, state_dir: Path) -> GovStore:
    if store_url:
        return PostgresGovStore(store_url)
    return SQLiteGovStore(state_dir / "interlock.db")
