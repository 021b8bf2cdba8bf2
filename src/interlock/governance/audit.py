"""The audit log: every administrative change, who made it, through what, when, and the item before and after.

One row per change in ``gov_audit`` (governance migration 7), beside the definitions in the same store, so
every worker and replica writes to and reads one log. The console writes an entry for each change it makes
(``via = "console"``) and the admin API for each of its own (``via = "api"``). What an entry keeps is the
definitions' public JSON (``to_json``): never a key's plaintext or digest, which :func:`_scrub` drops should
a caller pass them. Pages read newest first by ``(at, id)``, one indexed range per page.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.principal import Principal
from interlock.governance.model import Definitions
from interlock.governance.store import GovStore, insert

#: Fields a definition's JSON must never carry into the log.
SECRET_FIELDS = frozenset({"key", "digest", "secret", "token", "plaintext"})
COLUMNS = "id, at, actor, via, action, target_kind, target_id, project, before, after"
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    at: float
    actor: str
    via: str
    action: str
    target_kind: str
    target_id: str
    project: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "via": self.via, "action": self.action,
                "target": {"kind": self.target_kind, "id": self.target_id}, "project": self.project,
                "before": self.before, "after": self.after}


def actor_of(principal: Principal) -> str:
    """Who made a change: ``admin`` or the project key's id, with its visible prefix."""
    if principal.admin:
        return f"admin ({principal.key_prefix}…)"
    return f"{principal.key_id or 'key'} ({principal.key_prefix}…)"


def project_of(defs: Definitions, kind: str, item: dict[str, Any] | None) -> str | None:
    """The project a change concerns (a project key's audit page shows its own project's entries)."""
    if item is None:
        return None
    if kind == "project":
        return str(item.get("id"))
    if kind == "key":
        return str(item.get("project"))
    scope, subject = item.get("scope"), item.get("subject")
    if scope == "project":
        return str(subject)
    if scope == "key" and isinstance(subject, str):
        key = defs.keys.get(subject)
        return key.project if key is not None else None
    return None


def _scrub(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {k: v for k, v in value.items() if k not in SECRET_FIELDS}


def _load(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    value = orjson.loads(text)
    return value if isinstance(value, dict) else None


class AuditLog:
    def __init__(self, store: GovStore, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.clock = clock

    async def record(self, principal: Principal, via: str, action: str, target_kind: str, target_id: str, *,
                     project: str | None, before: dict[str, Any] | None = None,
                     after: dict[str, Any] | None = None) -> AuditEntry:
        entry = AuditEntry(f"aud_{secrets.token_hex(8)}", self.clock.time(), actor_of(principal), via, action,
                           target_kind, target_id, project, _scrub(before), _scrub(after))
        row = (entry.id, entry.at, entry.actor, entry.via, entry.action, entry.target_kind, entry.target_id,
               entry.project, None if entry.before is None else orjson.dumps(entry.before).decode(),
               None if entry.after is None else orjson.dumps(entry.after).decode())
        # Not a change of definitions: no version bump, so the gateways do not reload for it.
        await self.store.transaction([insert("gov_audit", COLUMNS, row)])
        return entry

    async def page(self, *, project: str | None = None, before: tuple[float, str] | None = None,
                   limit: int = 50) -> list[AuditEntry]:
        """Newest first; ``project`` narrows to one project's entries, ``before`` continues after a cursor."""
        where: list[str] = []
        args: list[Any] = []
        if project is not None:
            where.append("project = ?")
            args.append(project)
        if before is not None:
            where.append("(at < ? OR (at = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        sql = (f"SELECT {COLUMNS} FROM gov_audit" + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY at DESC, id DESC LIMIT {max(1, min(limit, MAX_PAGE))}")
        return [AuditEntry(str(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]),
                           None if r[7] is None else str(r[7]), _load(r[8]), _load(r[9]))
                for r in await self.store.fetch(sql, args)]
