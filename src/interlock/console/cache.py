"""``/console/cache``: the response cache — entries, bytes and hit rate (``ResponseCache.stats()``, what
``GET /admin/v1/cache`` shows), the entries and bytes held now per project and model (``ResponseCache.census``),
and, from the request log's rollups, hits and dollars saved per day, project and model; clearing by
namespace, project or model (admin key only).

Entry keys carry 8-character tags of the project, namespace and model, so the census reads every key (an
admin read: the memory backend's map, or a Redis SCAN with each batch's sizes in one pipeline) and names the
tags from the projects and models known here (governance, the last days' traffic). Hits and savings per
project and model are the rollups' ``cache_hits`` and ``saved_picousd`` (``spend_dims``: a handful of rows
whatever the traffic). A project key sees its own project's entries and savings, never the other projects',
and cannot clear. Clearing is two steps: ``GET /console/cache/clear?…`` shows what will go, its ``POST``
(CSRF-checked) deletes and writes an audit entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment

from interlock.cache.response_cache import ResponseCache
from interlock.cache.store import Selector
from interlock.console.forms import admin_only, confirm, posted
from interlock.console.sessions import Session, Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.web import redirect, send_page
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.exchange import Exchange
from interlock.governance.audit import AuditLog
from interlock.governance.service import Governance
from interlock.ledger.schema import SpendQuery
from interlock.ledger.writer import LogStore

PAGE = "/console/cache"
CLEAR = "/console/cache/clear"
FIELDS = ("namespace", "project", "model")
DAYS = 7
MAX_FIELD = 200
#: How a rollup's empty project or model reads (the admin key's own requests; requests refused before routing).
NONE = {"project": "(admin key, no project)", "model": "(none: refused before routing)", "day": "—"}


def selector_form(values: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The clear form's fields (trimmed) and its errors beside each field."""
    form = {k: values.get(k, "").strip() for k in FIELDS}
    errors: dict[str, str] = {}
    for k, v in form.items():
        if len(v) > MAX_FIELD:
            errors[k] = f"At most {MAX_FIELD} characters."
        elif any(not c.isprintable() for c in v):
            errors[k] = "Only printable characters."
    if not any(form.values()) and not errors:
        errors["namespace"] = "Name a namespace, a project or a model (or several): what to clear."
    return form, errors


def selector_text(form: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in form.items() if v)


def saved_row(row: dict[str, Any], name: str) -> dict[str, Any]:
    requests = int(row["requests"])
    hits = int(row["cache_hits"])
    return {"name": row.get(name) or NONE[name], "requests": requests, "hits": hits,
            "rate": f"{100 * hits / requests:.1f}%" if requests else "—",
            "saved": row["saved_picousd"] / 1e12, "cost": row["cost_picousd"] / 1e12}


def held_name(name: str, kind: str) -> str:
    """How a census name reads: the admin key's own entries, those shared by every project, an unknown tag."""
    if name == "":
        return NONE["project"] if kind == "projects" else NONE["model"]
    if name == "*" and kind == "projects":
        return "(shared by every project)"
    if name.startswith("#"):
        return f"(unknown {'project' if kind == 'projects' else 'model'}, tag {name[1:]})"
    return name


class CachePage:
    def __init__(self, env: Environment, sessions: Sessions, cache: ResponseCache | None, log: LogStore | None,
                 audit: AuditLog, gov: Governance | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.env = env
        self.sessions = sessions
        self.cache = cache
        self.log = log
        self.audit = audit
        self.gov = gov
        self.clock = clock

    async def route(self, req: Exchange) -> None:
        """``/console/cache`` (GET) and ``/console/cache/clear`` (GET: confirm; POST: clear)."""
        if req.path.rstrip("/") == CLEAR:
            await (self.clear(req) if req.method == "POST" else self.ask(req))
        elif req.path.rstrip("/") == PAGE and req.method != "POST":
            await self.page(req)
        else:
            session = await self.sessions.resolve(req)
            if session is None:
                redirect(req, signin_url(PAGE))
                return
            send_page(req, self.env, 404 if req.method != "POST" else 405, "error.html", {
                "title": "Not found", "active": "cache", "message": f"No page {req.path[:100]} for {req.method}.",
                **viewer(session)})

    async def _savings(self, session: Session) -> dict[str, list[dict[str, Any]]]:
        if self.log is None:
            return {"days_rows": [], "projects": [], "models": []}
        principal = session.principal
        project = None if principal.admin else principal.project or ""
        today = dt.datetime.fromtimestamp(self.clock.time(), dt.UTC).date()
        since = (today - dt.timedelta(days=DAYS - 1)).isoformat()
        days = {r["day"]: r for r in await self.log.spend(SpendQuery("day", since=since, project=project))}
        out: dict[str, list[dict[str, Any]]] = {"days_rows": []}
        empty = {"requests": 0, "cache_hits": 0, "saved_picousd": 0, "cost_picousd": 0}
        for i in range(DAYS - 1, -1, -1):
            day = (today - dt.timedelta(days=i)).isoformat()
            out["days_rows"].append(saved_row({"day": day, **empty, **days.get(day, {})}, "day"))
        top = max((d["saved"] for d in out["days_rows"]), default=0.0) or 1.0
        for d in out["days_rows"]:
            d["width"] = round(100 * d["saved"] / top, 1)
        for group, key in (("projects", "project"), ("models", "model")):
            rows = await self.log.spend(SpendQuery(key, since=since, project=project))
            out[group] = sorted((saved_row(r, key) for r in rows if r["requests"]),
                                key=lambda r: (-r["saved"], -r["hits"], r["name"]))
        return out

    async def _census(self, session: Session, savings: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        """Entries and bytes held now per project and per model (a project key: its own, per model). Keys hold
        tags of the names: they are named from the projects known here and the last days' traffic."""
        assert self.cache is not None
        principal = session.principal
        projects = {r["name"] for r in savings.get("projects", [])}
        if self.gov is not None:
            projects |= set(self.gov.defs.projects)
        models = {r["name"] for r in savings.get("models", [])}
        only = None if principal.admin else principal.project or ""
        by_project, by_model = await self.cache.census(projects, models, only)
        return {name: sorted(({"name": held_name(k, name), "entries": v[0], "bytes": v[1]} for k, v in got.items()),
                             key=lambda r: (-r["bytes"], r["name"]))
                for name, got in (("projects", by_project), ("models", by_model))}

    async def page(self, req: Exchange, *, status: int = 200, session: Session | None = None,
                   errors: dict[str, str] | None = None, form: dict[str, str] | None = None) -> None:
        session = session or await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE))
            return
        principal = session.principal
        stats = await self.cache.stats() if self.cache is not None else None
        savings = await self._savings(session)
        held = await self._census(session, savings) if self.cache is not None else {"projects": [], "models": []}
        done = ""
        for name, value in parse_qsl(req.query):
            if name == "cleared" and value.isdigit():
                done = f"Cleared {int(value)} entr{'y' if value == '1' else 'ies'}."
        send_page(req, self.env, status, "cache.html", {
            "title": "Cache", "active": "cache", **viewer(session), "admin": principal.admin,
            "project": principal.project or "", "on": self.cache is not None, "stats": stats,
            "log_on": self.log is not None, "days": DAYS, **savings, "held": held,
            "shared": self.cache is not None and self.cache.settings.share_across_projects,
            "total_saved": sum(d["saved"] for d in savings["days_rows"]),
            "total_hits": sum(d["hits"] for d in savings["days_rows"]),
            "errors": errors or {}, "form": form or {}, "done": done})

    async def ask(self, req: Exchange) -> None:
        """The confirmation page of a clear (the page's form is a GET to here)."""
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE))
            return
        if not admin_only(req, self.env, session, "The response cache's entries"):
            return
        form, errors = selector_form(dict(parse_qsl(req.query)))
        if self.cache is None:
            errors = {"namespace": "The response cache is off on this gateway: there is nothing to clear."}
        if errors:
            await self.page(req, status=400, session=session, errors=errors, form=form)
            return
        confirm(req, self.env, session, title="Clear these cache entries?", active="cache", back=PAGE,
                message=f"Every cached answer with {selector_text(form)} is deleted from the response cache "
                        "(the next such request goes to the model again). This cannot be undone.",
                action=CLEAR, button="Clear entries", fields={k: v for k, v in form.items() if v})

    async def clear(self, req: Exchange) -> None:
        got = await posted(req, self.env, self.sessions, PAGE)
        if got is None or not admin_only(req, self.env, got.session, "The response cache's entries"):
            return
        form, errors = selector_form(got.form)
        if self.cache is None:
            errors = {"namespace": "The response cache is off on this gateway: there is nothing to clear."}
        if errors or self.cache is None:
            await self.page(req, status=400, session=got.session, errors=errors, form=form)
            return
        selector = Selector(form["project"] or None, form["namespace"] or None, form["model"] or None)
        deleted = await self.cache.delete(selector)
        chosen = {k: v for k, v in form.items() if v}
        await self.audit.record(got.session.principal, "console", "cache.clear", "cache", selector_text(form),
                                project=form["project"] or None, before=None,
                                after={"deleted": deleted, "selector": chosen})
        redirect(req, f"{PAGE}?cleared={deleted}")
