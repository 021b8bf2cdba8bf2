"""``/console/budgets``: budgets (spent, reserved and remaining as a bar, the period's reset, soft alerts
crossed) and rate limits (rpm, tpm, concurrency, tool calls per minute); create and delete them.

The admin key sees and changes every one; a project key sees those on its project and its keys (read only).
Changes go through ``governance.ops`` like the admin API, are written to the audit log, and are applied by
this worker at once. Deleting asks for confirmation first (a GET shows what will go, the POST deletes).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment

from interlock.console.forms import admin_only, admin_step, confirm, done_note, field_list, not_found, posted
from interlock.console.sessions import Session, Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.views import utc_when
from interlock.console.web import redirect, send_page
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.governance import ops
from interlock.governance.audit import AuditLog, project_of
from interlock.governance.model import (
    BUDGET_SCOPES,
    LIMIT_SCOPES,
    MODES,
    PERIODS,
    Budget,
    DefinitionError,
    Limit,
)
from interlock.governance.service import Governance

PAGE = "/console/budgets"
KINDS = ("budgets", "limits")


def budget_body(form: dict[str, str], *, edit: bool = False) -> dict[str, Any]:
    """The budget form as the admin API's JSON body (``edit``: the changeable fields only)."""
    body: dict[str, Any] = {} if edit else {"scope": form.get("scope", ""), "subject": form.get("subject", "").strip()}
    body.update(amount_usd=form.get("amount_usd", "").strip(), period=form.get("period", ""),
                mode=form.get("mode", ""))
    thresholds = field_list(form.get("thresholds", ""))
    if thresholds:
        body["thresholds"] = [int(t) if t.isdigit() else t for t in thresholds]
    return body


def limit_body(form: dict[str, str], *, edit: bool = False) -> dict[str, Any]:
    """The limit form as the admin API's JSON body (``edit``: every count, an empty one as null: removed)."""
    body: dict[str, Any] = {} if edit else {"scope": form.get("scope", ""), "subject": form.get("subject", "").strip()}
    for name in ("rpm", "tpm", "concurrent", "tool_calls_per_minute"):
        text = form.get(name, "").strip()
        if text:
            body[name] = int(text) if text.isdigit() else text
        elif edit:
            body[name] = None
    return body


def bar(spent: float, reserved: float, amount: float) -> dict[str, Any]:
    """The progress figures of one budget: the used share (spent + reserved) and its words."""
    used = spent + reserved
    share = used / amount if amount > 0 else 1.0
    return {"used_pct": round(100 * share, 1), "meter": min(used, amount), "high": 0.8 * amount,
            "state": "over" if used >= amount else "high" if share >= 0.8 else "ok"}


class BudgetsPage:
    def __init__(self, env: Environment, sessions: Sessions, gov: Governance, audit: AuditLog,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.env = env
        self.sessions = sessions
        self.gov = gov
        self.audit = audit
        self.clock = clock

    def _visible(self, principal: Principal, item: Budget | Limit) -> bool:
        return principal.admin or project_of(self.gov.defs, "budget", item.to_json()) == principal.project

    async def route(self, req: Exchange) -> None:
        """``/console/budgets`` (GET; POST ``kind=budget|limit`` creates) and ``/console/{kind}/{id}/delete``."""
        parts = [p for p in req.path.split("/") if p][1:]  # drop "console"
        if parts == ["budgets"]:
            await (self.create(req) if req.method == "POST" else self.page(req))
        elif len(parts) == 3 and parts[0] in KINDS and parts[2] == "delete":
            await self.delete(req, parts[0], unquote(parts[1]))
        elif len(parts) == 3 and parts[0] in KINDS and parts[2] == "edit":
            await self.edit(req, parts[0], unquote(parts[1]))
        else:
            await not_found(req, self.env, self.sessions, "budgets", PAGE)

    async def page(self, req: Exchange, *, status: int = 200, session: Session | None = None,
                   errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                   which: str = "") -> None:
        session = session or await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE))
            return
        await self.gov.poll()
        principal = session.principal
        defs = self.gov.defs
        budgets = []
        for b in sorted(defs.budgets.values(), key=lambda b: (b.scope, b.subject, b.created_at)):
            if not self._visible(principal, b):
                continue
            row: dict[str, Any] = {**b.to_json(), "amount": float(b.to_json()["amount_usd"]), "alerts": []}
            if b.subject != "*":
                st = await self.gov.budget_status(b)
                spent, reserved = float(st["spent_usd"]), float(st["reserved_usd"])
                # The thresholds this period's settled spend has crossed (the alerts sent, on any worker).
                row.update(alerts=[t for t in b.thresholds if spent >= row["amount"] * t / 100],
                           spent=spent, reserved=reserved, remaining=float(st["remaining_usd"]),
                           resets=utc_when(st["period_end"])[:16] + " UTC" if st["period_end"] else "never",
                           **bar(spent, reserved, row["amount"]))
            budgets.append(row)
        limits = [lim.to_json() for lim in sorted(defs.limits.values(), key=lambda x: (x.scope, x.subject))
                  if self._visible(principal, lim)]
        send_page(req, self.env, status, "budgets.html", {
            "title": "Budgets and limits", "active": "budgets", **viewer(session), "admin": principal.admin,
            "budgets": budgets, "limits": limits, "errors": errors or {}, "form": form or {}, "which": which,
            "budget_scopes": BUDGET_SCOPES, "limit_scopes": LIMIT_SCOPES, "periods": PERIODS, "modes": MODES,
            "done": done_note(req.query)})

    async def create(self, req: Exchange) -> None:
        got = await posted(req, self.env, self.sessions, PAGE)
        if got is None or not admin_only(req, self.env, got.session, "Budgets and limits"):
            return
        kind = got.form.get("kind")
        if kind not in ("budget", "limit"):
            await self.page(req, status=400, session=got.session, errors={"kind": "expected budget or limit"})
            return
        gov = self.gov
        if gov.cfg.workers > 1 and gov.redis is None:
            await self.page(req, status=409, session=got.session, form=got.form, which=kind, errors={
                "scope": f"this gateway runs {gov.cfg.workers} workers without redis:, so budgets and limits "
                         "could not be counted exactly; configure redis: first"})
            return
        try:
            item: Budget | Limit = await (ops.create_budget(gov.store, budget_body(got.form)) if kind == "budget"
                                          else ops.create_limit(gov.store, limit_body(got.form)))
        except DefinitionError as exc:
            await self.page(req, status=400, session=got.session, errors={exc.field: exc.message},
                            form=got.form, which=kind)
            return
        except ops.Missing as exc:
            await self.page(req, status=400, session=got.session, errors={exc.field or "subject": exc.message},
                            form=got.form, which=kind)
            return
        await gov.poll()
        await self.audit.record(got.session.principal, "console", f"{kind}.create", kind, item.id,
                                project=project_of(gov.defs, kind, item.to_json()), after=item.to_json())
        redirect(req, f"{PAGE}?done={kind}-created:{quote(item.id)}")

    async def delete(self, req: Exchange, kind: str, item_id: str) -> None:
        one = kind[:-1]
        step = await admin_step(req, self.env, self.sessions, back=PAGE, what="Budgets and limits",
                                here=f"/console/{kind}/{quote(item_id)}/delete")
        if step is None:
            return
        session, form = step
        item = await self._item(req, session, kind, item_id)
        if item is None:
            return
        if form is None:
            confirm(req, self.env, session, title=f"Delete this {one}?", active="budgets", back=PAGE,
                    message=f"The {one} {item.id} on {item.scope} {item.subject} ({describe(item)}) stops "
                            "applying at once. This cannot be undone.",
                    action=f"/console/{kind}/{quote(item.id)}/delete", button=f"Delete {one}")
            return
        await self.gov.store.delete(f"gov_{kind}", item.id)
        await self.gov.poll()
        await self.audit.record(session.principal, "console", f"{one}.delete", one, item.id,
                                project=project_of(self.gov.defs, one, item.to_json()), before=item.to_json())
        redirect(req, f"{PAGE}?done={one}-deleted:{quote(item.id)}")

    async def _item(self, req: Exchange, session: Session, kind: str, item_id: str) -> Budget | Limit | None:
        """The budget or limit an action names, read fresh; the page with a 404 note when there is none."""
        await self.gov.poll()
        item: Budget | Limit | None = getattr(self.gov.defs, kind).get(item_id)
        if item is None:
            await self.page(req, status=404, session=session,
                            errors={"kind": f"No {kind[:-1]} with id {item_id!r}."})
        return item

    async def edit(self, req: Exchange, kind: str, item_id: str) -> None:
        """``GET``: the item's form, filled in; ``POST``: the change (what it applies to stays)."""
        one = kind[:-1]
        path = f"/console/{kind}/{quote(item_id)}/edit"
        step = await admin_step(req, self.env, self.sessions, back=PAGE, here=path, what="Budgets and limits")
        if step is None:
            return
        session, form = step
        item = await self._item(req, session, kind, item_id)
        if item is None:
            return
        values = edit_values(item)
        errors: dict[str, str] = {}
        if form is not None:
            values = {name: form.get(name, "").strip() for name in values}
            try:
                changed: Budget | Limit = await (
                    ops.update_budget(self.gov.store, item, budget_body(form, edit=True))
                    if isinstance(item, Budget) else
                    ops.update_limit(self.gov.store, item, limit_body(form, edit=True)))
            except DefinitionError as exc:
                errors = {exc.field: exc.message}
            else:
                await self.gov.poll()
                await self.audit.record(session.principal, "console", f"{one}.update", one, item.id,
                                        project=project_of(self.gov.defs, one, item.to_json()),
                                        before=item.to_json(), after=changed.to_json())
                redirect(req, f"{PAGE}?done={one}-updated:{quote(item.id)}")
                return
        labels = {"amount_usd": "Amount (USD)", "period": "Period", "mode": "Mode",
                  "thresholds": "Alert at (%)", "rpm": "Requests/min", "tpm": "Tokens/min",
                  "concurrent": "Concurrent", "tool_calls_per_minute": "Tool calls/min"}
        choices = {"period": ",".join(PERIODS), "mode": ",".join(MODES)}
        confirm(req, self.env, session, title=f"Change this {one}", active="budgets", back=PAGE, danger=False,
                message=f"The {one} {item.id} on {item.scope} {item.subject}. What it applies to cannot change"
                        + (" (its spend so far is kept)." if isinstance(item, Budget) else "; leave a field "
                           "empty for no limit of that kind."),
                action=path, button="Save", errors=errors, status=400 if errors else 200,
                inputs=[{"name": n, "label": labels[n], "value": v, **({"choices": choices[n]} if n in choices
                                                                         else {})} for n, v in values.items()])


def describe(item: Budget | Limit) -> str:
    if isinstance(item, Budget):
        return f"{item.to_json()['amount_usd']} USD {item.period}, {item.mode}"
    parts = [f"{name} {value}" for name, value in (("rpm", item.rpm), ("tpm", item.tpm),
                                                     ("concurrent", item.concurrent),
                                                     ("tool calls/min", item.tool_calls_per_minute)) if value]
    return ", ".join(parts)


def edit_values(item: Budget | Limit) -> dict[str, str]:
    """An item's changeable fields as the edit form shows them."""
    if isinstance(item, Budget):
        return {"amount_usd": str(item.to_json()["amount_usd"]), "period": item.period, "mode": item.mode,
                "thresholds": ", ".join(str(t) for t in item.thresholds)}
    return {name: "" if value is None else str(value) for name, value in (
        ("rpm", item.rpm), ("tpm", item.tpm), ("concurrent", item.concurrent),
        ("tool_calls_per_minute", item.tool_calls_per_minute))}
