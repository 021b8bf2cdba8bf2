"""``/console/audit``: the audit log — every administrative change, newest first, with who made it, through
what (console or admin API), when, and the item before and after. The admin key sees every entry; a project
key the entries about its own project. One indexed page of 50 per load, older pages by cursor."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from jinja2 import Environment

from interlock.console.sessions import Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.views import utc_when
from interlock.console.web import redirect, send_page
from interlock.core.exchange import Exchange
from interlock.governance.audit import AuditEntry, AuditLog

PAGE = "/console/audit"
PAGE_SIZE = 50


def encode(entry: AuditEntry) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([entry.at, entry.id])).decode().rstrip("=")


def decode(text: str) -> tuple[float, str] | None:
    """A cursor this page made, or None for anything else."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        return None
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int | float)
            and not isinstance(value[0], bool) and isinstance(value[1], str)):
        return float(value[0]), value[1]
    return None


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """The fields that differ, as (field, before, after) text; the set fields of a creation or a deletion."""
    old, new = before or {}, after or {}
    both = bool(before) and bool(after)
    out = []
    for name in dict.fromkeys([*old, *new]):
        a, b = old.get(name), new.get(name)
        if both and (a == b or name == "created_at"):
            continue
        if not both and a in (None, [], {}) and b in (None, [], {}):
            continue
        out.append((name, _text(name, a) if name in old else "", _text(name, b) if name in new else ""))
    return out


def _text(name: str, value: Any) -> str:
    if value is None:
        return "none"
    if name.endswith("_at") and isinstance(value, int | float) and not isinstance(value, bool):
        return utc_when(value)[:19] + " UTC"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class AuditPage:
    def __init__(self, env: Environment, sessions: Sessions, audit: AuditLog) -> None:
        self.env = env
        self.sessions = sessions
        self.audit = audit

    async def page(self, req: Exchange) -> None:
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE))
            return
        principal = session.principal
        raw = parse_qs(req.query).get("cursor", [""])[0]
        cursor = decode(raw) if raw else None
        context: dict[str, Any] = {"title": "Audit log", "active": "audit", **viewer(session),
                                   "admin": principal.admin, "error": None, "entries": [], "next_link": None,
                                   "first_link": None}
        if raw and cursor is None:
            send_page(req, self.env, 400, "audit.html", {**context, "error": "The 'cursor' parameter is not a "
                                                         "cursor of this page; start from the newest entries."})
            return
        entries = await self.audit.page(project=None if principal.admin else principal.project, before=cursor,
                                        limit=PAGE_SIZE + 1)
        more = len(entries) > PAGE_SIZE
        entries = entries[:PAGE_SIZE]
        send_page(req, self.env, 200, "audit.html", {
            **context,
            "entries": [{"when": utc_when(e.at)[:19], "actor": e.actor, "via": e.via, "action": e.action,
                         "target": f"{e.target_kind} {e.target_id}", "project": e.project or "—", "id": e.id,
                         "changes": changes(e.before, e.after)} for e in entries],
            "next_link": f"{PAGE}?{urlencode({'cursor': encode(entries[-1])})}" if more and entries else None,
            "first_link": PAGE if cursor else None})
