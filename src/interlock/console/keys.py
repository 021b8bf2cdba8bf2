"""``/console/keys``: projects and API keys — list, create, rotate with overlap, revoke.

The admin key sees every project and key and may change them; a project key sees its own project and keys
(read only). A new key's plaintext is shown once, in the answer to the form that made it, with a copy
button; it is never stored or shown again (the store keeps an HMAC). Every change goes through the same
operations as the admin API (``governance.ops``), is written to the audit log, and is applied by this worker
at once (the others within their poll interval). Per-key spend comes from the daily rollup (last 30 days)
and last use from one indexed read per key, never from a scan of the log.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment

from interlock.console.forms import admin_only, admin_step, confirm, done_note, field_list, not_found, posted
from interlock.console.sessions import Session, Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.views import usd, utc_when
from interlock.console.web import redirect, send_page
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.exchange import Exchange
from interlock.core.regions import BUILTIN_REGIONS
from interlock.governance import ops
from interlock.governance.audit import AuditLog
from interlock.governance.model import LOG_LEVELS, ApiKey, DefinitionError, parse_duration
from interlock.governance.service import Governance
from interlock.governance.store import Duplicate
from interlock.guardrails.settings import GuardrailConfig
from interlock.ledger.schema import SpendQuery
from interlock.ledger.writer import LogStore

PAGE = "/console/keys"
SPEND_DAYS = 30


def key_status(key: ApiKey, now: float) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.replaced_by is not None:
        return "rotating out"
    return "active"


def project_body(form: dict[str, str]) -> dict[str, Any]:
    """The create-project form as the admin API's JSON body."""
    body: dict[str, Any] = {"id": form.get("id", "").strip(),
                            "allowed_models": field_list(form.get("allowed_models", "")),
                            "allowed_vendors": field_list(form.get("allowed_vendors", "")),
                            "zero_data_retention": form.get("zero_data_retention") == "on"}
    if form.get("name", "").strip():
        body["name"] = form["name"].strip()
    if "regions" in form:
        body["regions"] = field_list(form["regions"])
    if form.get("log_level", "").strip():
        body["log_level"] = form["log_level"].strip()
    return body


def key_body(form: dict[str, str]) -> dict[str, Any]:
    """The create-key form as the admin API's JSON body."""
    body: dict[str, Any] = {"project": form.get("project", "").strip(),
                            "allowed_models": field_list(form.get("allowed_models", ""))}
    if form.get("name", "").strip():
        body["name"] = form["name"].strip()
    if form.get("expires_in", "").strip():
        body["expires_in"] = form["expires_in"].strip()
    return body


class KeysPage:
    def __init__(self, env: Environment, sessions: Sessions, gov: Governance, secret: bytes, audit: AuditLog,
                 log: LogStore | None, guardrails: GuardrailConfig | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.env = env
        self.sessions = sessions
        self.gov = gov
        self.secret = secret
        self.audit = audit
        self.log = log
        self.guardrails = guardrails or GuardrailConfig()
        self.clock = clock
        #: What a project's or key's regions may name (the app sets the config's table).
        self.regions = BUILTIN_REGIONS

    async def route(self, req: Exchange) -> None:
        """``/console/keys``, ``/console/keys/{id}/revoke|rotate`` and ``/console/projects`` (POST)."""
        rest = req.path[len(PAGE):].strip("/") if req.path.startswith(PAGE) else ""
        if req.path.startswith("/console/projects/") and req.path.endswith("/edit"):
            await self.edit_project(req, unquote(req.path[len("/console/projects/"):-len("/edit")]))
        elif req.path.startswith("/console/projects"):
            await self.create_project(req)
        elif not rest:
            await (self.create_key(req) if req.method == "POST" else self.page(req))
        elif rest.count("/") == 1 and rest.endswith(("/revoke", "/rotate")):
            kid, action = rest.split("/")
            await self.change_key(req, unquote(kid), action)
        else:
            await not_found(req, self.env, self.sessions, "keys", PAGE)

    # ----------------------------------------------------------------- the page

    async def page(self, req: Exchange, *, status: int = 200, session: Session | None = None,
                   errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                   created: dict[str, Any] | None = None, which: str = "") -> None:
        session = session or await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE))
            return
        await self.gov.poll()
        principal = session.principal
        now = self.clock.time()
        defs = self.gov.defs
        projects = sorted((p for p in defs.projects.values() if principal.admin or p.id == principal.project),
                          key=lambda p: p.id)
        keys = sorted((k for k in defs.keys.values() if principal.admin or k.project == principal.project),
                      key=lambda k: (k.project, -k.created_at))
        spend, used = await self._activity(keys, None if principal.admin else principal.project, now)
        counts: dict[str, int] = {}
        for k in keys:
            if key_status(k, now) != "revoked":
                counts[k.project] = counts.get(k.project, 0) + 1
        send_page(req, self.env, status, "keys.html", {
            "title": "Projects and keys", "active": "keys", **viewer(session), "admin": principal.admin,
            "projects": [{**p.to_json(), "keys": counts.get(p.id, 0), "created": utc_when(p.created_at)[:10]}
                         for p in projects],
            "keys": [{**k.to_json(), "status": key_status(k, now), "created": utc_when(k.created_at)[:16],
                      "expires": utc_when(k.expires_at)[:16] if k.expires_at else "never",
                      "spend": usd(spend.get(k.id, 0)), "last_used": utc_when(used[k.id])[:19] if k.id in used
                      else "never"} for k in keys],
            "log_levels": LOG_LEVELS, "errors": errors or {}, "form": form or {}, "which": which,
            "created": created, "spend_days": SPEND_DAYS, "log_on": self.log is not None,
            "done": done_note(req.query)})

    async def _activity(self, keys: list[ApiKey], project: str | None,
                        now: float) -> tuple[dict[str, int], dict[str, float]]:
        if self.log is None or not keys:
            return {}, {}
        since = dt.datetime.fromtimestamp(now - SPEND_DAYS * 86400, dt.UTC).strftime("%Y-%m-%d")
        rows = await self.log.spend(SpendQuery(group_by="key", since=since, project=project))
        spend = {str(r["key"]): int(r["cost_picousd"]) for r in rows if r.get("key")}
        return spend, await self.log.last_used([k.id for k in keys])

    # ----------------------------------------------------------------- changes

    async def create_project(self, req: Exchange) -> None:
        got = await posted(req, self.env, self.sessions, PAGE)
        if got is None or not admin_only(req, self.env, got.session, "Projects"):
            return
        try:
            project = await ops.create_project(self.gov.store, project_body(got.form), guardrails=self.guardrails,
                                               regions=self.regions)
        except DefinitionError as exc:
            await self.page(req, status=400, session=got.session, errors={exc.field: exc.message},
                            form=got.form, which="project")
            return
        except Duplicate:
            await self.page(req, status=409, session=got.session, form=got.form, which="project",
                            errors={"id": f"a project with id {got.form.get('id', '')!r} already exists"})
            return
        await self.audit.record(got.session.principal, "console", "project.create", "project", project.id,
                                project=project.id, after=project.to_json())
        await self.gov.poll()
        redirect(req, f"{PAGE}?done=project-created:{quote(project.id)}")

    async def edit_project(self, req: Exchange, pid: str) -> None:
        """``GET``: the project's settings in a form; ``POST``: the change (its id stays)."""
        path = f"/console/projects/{quote(pid)}/edit"
        step = await admin_step(req, self.env, self.sessions, back=PAGE, here=path, what="Projects")
        if step is None:
            return
        session, form = step
        await self.gov.poll()
        project = self.gov.defs.projects.get(pid)
        if project is None:
            await self.page(req, status=404, session=session, errors={"key": f"No project with id {pid!r}."})
            return
        values = {"name": project.name, "log_level": project.log_level or "",
                  "allowed_models": ", ".join(project.allowed_models),
                  "allowed_vendors": ", ".join(project.allowed_vendors),
                  "zero_data_retention": "yes" if project.zero_data_retention else "no",
                  "regions": ", ".join(project.regions)}
        errors: dict[str, str] = {}
        if form is not None:
            values = {name: form.get(name, "").strip() for name in values}
            body = project_body({**values, "id": pid, "zero_data_retention":
                                 "on" if values["zero_data_retention"] == "yes" else ""})
            body.pop("id")
            body.setdefault("log_level", None)
            try:
                changed = await ops.update_project(self.gov.store, project, body, guardrails=self.guardrails,
                                                   regions=self.regions)
            except DefinitionError as exc:
                errors = {exc.field: exc.message}
            else:
                await self.gov.poll()
                await self.audit.record(session.principal, "console", "project.update", "project", pid,
                                        project=pid, before=project.to_json(), after=changed.to_json())
                redirect(req, f"{PAGE}?done=project-updated:{quote(pid)}")
                return
        confirm(req, self.env, session, title=f"Change project {pid}", active="keys", back=PAGE, danger=False,
                message="Allowed models and vendors apply to the project's next requests; zero data retention "
                        "and the log level to what is logged from then on.",
                action=path, button="Save", errors=errors, status=400 if errors else 200, inputs=[
                    {"name": "name", "label": "Name", "value": values["name"]},
                    {"name": "log_level", "label": "Log level", "value": values["log_level"],
                     "choices": ",".join(("", *LOG_LEVELS))},
                    {"name": "allowed_models", "label": "Allowed models", "value": values["allowed_models"],
                     "hint": "Comma-separated; empty: any. Patterns such as openai/* work."},
                    {"name": "allowed_vendors", "label": "Allowed vendors", "value": values["allowed_vendors"],
                     "hint": "Comma-separated; empty: any."},
                    {"name": "zero_data_retention", "label": "Zero data retention",
                     "value": values["zero_data_retention"], "choices": "no,yes"},
                    {"name": "regions", "label": "Regions", "value": values["regions"],
                     "hint": "Data residency, comma-separated jurisdictions or regions (eu, us, uk, eu-central-1); "
                             "empty: anywhere."}])

    async def create_key(self, req: Exchange) -> None:
        got = await posted(req, self.env, self.sessions, PAGE)
        if got is None or not admin_only(req, self.env, got.session, "Keys"):
            return
        try:
            key, plaintext, _ = await ops.create_key(self.gov.store, self.secret, key_body(got.form),
                                                     regions=self.regions)
        except DefinitionError as exc:
            await self.page(req, status=400, session=got.session, errors={exc.field: exc.message},
                            form=got.form, which="key")
            return
        except ops.Missing as exc:
            await self.page(req, status=400, session=got.session, errors={exc.field or "project": exc.message},
                            form=got.form, which="key")
            return
        await self.audit.record(got.session.principal, "console", "key.create", "key", key.id,
                                project=key.project, after=key.to_json())
        await self.page(req, status=201, session=got.session,
                        created={"id": key.id, "key": plaintext, "project": key.project, "what": "created"})

    async def change_key(self, req: Exchange, kid: str, action: str) -> None:
        step = await admin_step(req, self.env, self.sessions, back=PAGE, here=f"{PAGE}/{quote(kid)}/{action}",
                                what="Keys")
        if step is None:
            return
        session, form = step
        await self.gov.poll()
        key = self.gov.defs.keys.get(kid)
        if key is None:
            await self.page(req, status=404, session=session, errors={"key": f"No key with id {kid!r}."})
            return
        if form is None:
            self._confirm(req, session, key, action)
            return
        if action == "revoke":
            await self.gov.store.revoke_key(key.id, self.clock.time())
            await self.gov.poll()
            after = self.gov.defs.keys.get(key.id)
            await self.audit.record(session.principal, "console", "key.revoke", "key", key.id,
                                    project=key.project, before=key.to_json(),
                                    after=after.to_json() if after is not None else None)
            redirect(req, f"{PAGE}?done=key-revoked:{quote(key.id)}")
            return
        overlap_text = form.get("overlap", "").strip() or "0s"
        try:
            overlap = 0.0 if re.fullmatch(r"0+[smhdw]?", overlap_text) else parse_duration(overlap_text, "overlap")
            new, plaintext = await ops.rotate_key(self.gov.store, self.secret, key, overlap)
        except DefinitionError as exc:
            self._confirm(req, session, key, action, overlap_text, {"overlap": exc.message}, 400)
            return
        await self.gov.poll()
        await self.audit.record(session.principal, "console", "key.rotate", "key", new.id,
                                project=key.project, before=key.to_json(), after=new.to_json())
        await self.page(req, status=201, session=session,
                        created={"id": new.id, "key": plaintext, "project": new.project, "what": "rotated",
                                 "replaces": key.id, "overlap": overlap_text})

    def _confirm(self, req: Exchange, session: Session, key: ApiKey, action: str, overlap: str = "1h",
                 errors: dict[str, str] | None = None, status: int = 200) -> None:
        label = f"{key.id} ({key.name or 'unnamed'}, {key.prefix}…, project {key.project})"
        if action == "revoke":
            confirm(req, self.env, session, title="Revoke this key?", active="keys", back=PAGE,
                    message=f"Key {label} stops working at once: its next request is answered 401. "
                            "This cannot be undone.",
                    action=f"{PAGE}/{quote(key.id)}/revoke", button="Revoke key", status=status)
            return
        confirm(req, self.env, session, title="Rotate this key?", active="keys", back=PAGE,
                message=f"A new key replaces {label}, with the same project, models, budgets and limits. The "
                        "old key keeps working for the overlap you choose, then stops.",
                action=f"{PAGE}/{quote(key.id)}/rotate", button="Rotate key", errors=errors, status=status,
                inputs=[{"name": "overlap", "label": "Overlap", "value": overlap,
                         "hint": "How long the old key still works: 0s, 30m, 1h, 7d (at most 30 days)."}])

