"""The console's Spend page: ``/console/spend?by=day|week|month&group=model|vendor|project|key|tag&from=&to=``.

Spend per period, stacked by the chosen dimension (the six largest, the rest as "other"), with what the
response cache saved, the budgets that apply drawn as lines on the chart (those whose period is the chart's),
their status beside it, and the table as CSV (``/console/spend/export`` with the same parameters). Read from
the daily spend rollups (``spend_dims`` for every project, one project's rows of ``spend_daily`` otherwise),
one query per load, never the log's rows. Budgets come from governance through one narrow callable
(:func:`budget_source`). A project key sees its own project only; naming another is refused.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment

from interlock.console.charts import count, stacked_chart, usd
from interlock.console.sessions import Session, Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.web import SECURITY_HEADERS, redirect, send_page
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.governance.model import Budget
from interlock.ledger.filters import query_params
from interlock.ledger.usage import spend_periods_read
from interlock.ledger.writer import LogStore

PAGE = "/console/spend"
PERIODS = ("day", "week", "month")
GROUPS = ("model", "vendor", "region", "project", "key", "tag")
PARAMS = ("by", "group", "from", "to", "project")
#: The longest range one page reads (days): two years of daily rollups.
MAX_DAYS = 731
#: Default range: the last 30 days, or the current week or month and the eleven before it.
DEFAULT_DAYS = 30
DEFAULT_PERIODS = 12
SERIES = 6
BUDGET_PERIOD = {"day": "daily", "week": "weekly", "month": "monthly"}

#: The most budgets the page lists (their status is read for each).
MAX_BUDGETS = 50

#: The budgets the page shows, given the project it is narrowed to (None: every budget, the admin's view):
#: one dict per budget (name, scope, subject, period, mode, amount and its current period's status).
BudgetSource = Callable[[str | None], Awaitable[list[dict[str, Any]]]]


def budget_source(budgets: Callable[[], Iterable[Budget]],
                  status: Callable[[Budget], Awaitable[dict[str, Any]]]) -> BudgetSource:
    """The page's view of governance: the budgets defined now that apply, each with its current period's status.

    Narrowed to a project, only that project's budgets (a project key never sees another's); the statuses
    are read together, for at most ``MAX_BUDGETS`` budgets."""
    async def read(project: str | None) -> list[dict[str, Any]]:
        chosen = [b for b in budgets() if project is None or (b.scope == "project" and b.subject == project)]
        chosen = chosen[:MAX_BUDGETS]
        statuses = await asyncio.gather(*(status(b) for b in chosen))
        return [{"name": b.describe(), "scope": b.scope, "subject": b.subject, "period": b.period, "mode": b.mode,
                 "amount_usd": b.amount_micro / 1e6, "spent_usd": float(s["spent_usd"]),
                 "reserved_usd": float(s["reserved_usd"]), "remaining_usd": float(s["remaining_usd"])}
                for b, s in zip(chosen, statuses, strict=True)]
    return read


def period_of(day: str, by: str) -> str:
    """The period a UTC day falls in: the day, the Monday starting its week, or its month (pure)."""
    if by == "day":
        return day
    if by == "month":
        return day[:7]
    d = dt.date.fromisoformat(day)
    return (d - dt.timedelta(days=d.weekday())).isoformat()


def _date(text: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a date as YYYY-MM-DD, not {text[:32]!r}.", param=name) from None


def parse_params(params: dict[str, str], today: dt.date, *, admin: bool, own: str | None) -> dict[str, Any]:
    """The page's choices from its query parameters; raises InvalidRequest/PermissionDenied naming the field."""
    by = params.get("by") or "day"
    if by not in PERIODS:
        raise InvalidRequest(f"'by' must be one of {', '.join(PERIODS)}.", param="by")
    group = params.get("group") or "model"
    if group not in GROUPS:
        raise InvalidRequest(f"'group' must be one of {', '.join(GROUPS)}.", param="group")
    until = _date(params["to"], "to") if params.get("to") else today
    if params.get("from"):
        since = _date(params["from"], "from")
    elif by == "day":
        since = until - dt.timedelta(days=DEFAULT_DAYS - 1)
    elif by == "week":  # this week and the eleven before
        since = until - dt.timedelta(days=until.weekday(), weeks=DEFAULT_PERIODS - 1)
    else:  # this month and the eleven before
        months = until.year * 12 + until.month - 1 - (DEFAULT_PERIODS - 1)
        since = dt.date(months // 12, months % 12 + 1, 1)
    if since > until:
        raise InvalidRequest("'from' must not be after 'to'.", param="from")
    if (until - since).days >= MAX_DAYS:
        raise InvalidRequest(f"The range may cover at most {MAX_DAYS} days.", param="from")
    project = (params.get("project") or "").strip()
    if not admin:
        if project and project != own:
            raise PermissionDenied(f"This key belongs to project {own!r}; it cannot read {project[:64]!r}'s spend.",
                                   param="project")
        project = own or ""
    return {"by": by, "group": group, "from": since.isoformat(), "to": until.isoformat(), "project": project}


def periods_between(since: str, until: str, by: str) -> list[str]:
    out: list[str] = []
    d, end = dt.date.fromisoformat(since), dt.date.fromisoformat(until)
    while d <= end:
        p = period_of(d.isoformat(), by)
        if not out or out[-1] != p:
            out.append(p)
        d += dt.timedelta(days=1)
    return out


def spend_view(rows: Sequence[Sequence[Any]], choice: dict[str, Any], budgets: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Chart, pivot table and CSV rows from ``spend_periods_read`` rows (day, value, cost, saved, requests) (pure)."""
    by, group = choice["by"], choice["group"]
    periods = periods_between(choice["from"], choice["to"], by)
    cells: dict[tuple[str, str], list[int]] = {}
    per_group: dict[str, int] = {}
    saved: dict[str, int] = dict.fromkeys(periods, 0)
    requests: dict[str, int] = dict.fromkeys(periods, 0)
    for day, value, cost, save, reqs in rows:
        p = period_of(str(day), by)
        name = str(value) if value not in (None, "") else "—"
        cell = cells.setdefault((p, name), [0, 0, 0])
        cell[0] += int(cost or 0)
        cell[1] += int(save or 0)
        cell[2] += int(reqs or 0)
        per_group[name] = per_group.get(name, 0) + int(cost or 0)
        if p in saved:
            saved[p] += int(save or 0)
            requests[p] += int(reqs or 0)
    ranked = sorted(per_group, key=lambda g: (-per_group[g], g))
    shown = ranked[:SERIES]
    rest = ranked[SERIES:]
    names = shown + (["other"] if rest else [])
    stacks = []
    table = []
    for p in periods:
        values = [cells.get((p, g), [0])[0] for g in shown]
        if rest:
            values.append(sum(cells.get((p, g), [0])[0] for g in rest))
        stacks.append([v / 1e12 for v in values])
        table.append({"period": p, "cells": [usd(v) if v else "—" for v in values], "total": usd(sum(values)),
                      "saved": usd(saved[p]), "requests": f"{requests[p]:,}"})
    wanted = BUDGET_PERIOD[by]
    lines = [(b["amount_usd"], f"{b['name']} {usd(b['amount_usd'] * 1e12)}") for b in budgets if b["period"] == wanted]
    labels = [_short(p, by) for p in periods]
    chart = stacked_chart("c-spend", labels, stacks, names, lambda v: usd(v * 1e12),
                          title=f"Spend per {by} by {group} (USD)", lines=lines)
    csv_rows = [(p, g, cell[0], cell[1], cell[2]) for (p, g), cell in sorted(cells.items())]
    total = sum(per_group.values())
    return {"chart": chart, "names": names, "table": table, "csv": csv_rows, "total": usd(total),
            "saved": usd(sum(saved.values())), "requests": f"{sum(requests.values()):,}",
            "requests_compact": count(sum(requests.values())), "empty": not rows}


def _short(period: str, by: str) -> str:
    if by == "month":
        return period
    return period[5:]


def csv_text(rows: Sequence[tuple[str, str, int, int, int]], by: str, group: str) -> str:
    """The export: one line per period and group value, dollars to twelve decimals (exact picodollars)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([by, group, "cost_usd", "saved_usd", "requests"])
    for p, g, cost, save, reqs in rows:
        w.writerow([p, g, f"{cost / 1e12:.12f}", f"{save / 1e12:.12f}", reqs])
    return buf.getvalue()


class SpendPage:
    def __init__(self, env: Environment, sessions: Sessions, store: LogStore | None,
                 budgets: BudgetSource | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.env = env
        self.sessions = sessions
        self.store = store
        self.budgets = budgets
        self.clock = clock
        #: Each vendor instance's regions: ``region`` totals the vendor rollup by them (as configured now).
        self.regions: Mapping[str, tuple[str, ...]] = {}

    async def route(self, req: Exchange) -> None:
        rest = req.path[len(PAGE):].strip("/")
        if rest == "export":
            await self.export(req)
        elif rest:
            raise NotFound(f"There is no page {req.path[:80]!r}.")
        else:
            await self.page(req)

    async def _session(self, req: Exchange) -> Session | None:
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(req.path + (f"?{req.query}" if req.query else "")))
        return session

    def _choice(self, req: Exchange, session: Session) -> dict[str, Any]:
        params = {k: v for k, v in query_params(req, PARAMS).items() if v.strip()}
        today = dt.datetime.fromtimestamp(self.clock.time(), dt.UTC).date()
        principal = session.principal
        return parse_params(params, today, admin=principal.admin, own=principal.project)

    async def _rows(self, choice: dict[str, Any]) -> list[Sequence[Any]]:
        """The rollup rows of the choice; ``region`` reads the vendor rows and names each vendor's regions."""
        assert self.store is not None
        group = choice["group"]
        rows = await self.store.read_rollup(spend_periods_read("vendor" if group == "region" else group,
                                                               choice["from"], choice["to"], choice["project"] or None))
        if group != "region":
            return list(rows)
        return [(day, ", ".join(self.regions.get(str(value), ())) or None, *rest) for day, value, *rest in rows]

    async def view(self, choice: dict[str, Any], admin: bool) -> dict[str, Any]:
        """The page's figures: one rollup read, the budgets' status (what the template shows)."""
        assert self.store is not None
        started = time.perf_counter()
        rows = await self._rows(choice)
        budgets = await self.budgets(choice["project"] or None) if self.budgets is not None else []
        view = spend_view(rows, choice, budgets)
        view["budgets"] = [{**b, "amount": usd(b["amount_usd"] * 1e12), "spent": usd(b["spent_usd"] * 1e12),
                            "reserved": usd(b["reserved_usd"] * 1e12), "remaining": usd(b["remaining_usd"] * 1e12)}
                           for b in budgets]
        view["query_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return view

    async def page(self, req: Exchange) -> None:
        session = await self._session(req)
        if session is None:
            return
        admin = session.principal.admin
        context: dict[str, Any] = {
            "title": "Spend", "active": "spend", **viewer(session), "admin": admin,
            "own_project": session.principal.project, "error": None, "error_param": None, "off": self.store is None,
            "periods": PERIODS, "groups": [g for g in GROUPS if admin or g != "project"], "data": None,
            "choice": {"by": "day", "group": "model", "from": "", "to": "", "project": ""}, "export": ""}
        try:
            choice = self._choice(req, session)
        except GatewayError as err:
            raw = parse_qs(req.query)
            context["choice"].update({k: v[0][:64] for k, v in raw.items() if k in PARAMS and v})
            send_page(req, self.env, err.status, "spend.html", {**context, "error": err.message,
                                                                 "error_param": err.param})
            return
        context["choice"] = {**choice, "project": choice["project"] if admin else ""}
        if self.store is not None:
            context["data"] = await self.view(choice, admin)
            context["export"] = f"{PAGE}/export?" + urlencode({k: v for k, v in context["choice"].items() if v})
        send_page(req, self.env, 200, "spend.html", context)

    async def export(self, req: Exchange) -> None:
        session = await self._session(req)
        if session is None:
            return
        if self.store is None:
            raise PermissionDenied("The request log is off on this gateway (logging.level: off).")
        choice = self._choice(req, session)
        rows = await self._rows(choice)
        view = spend_view(rows, choice, [])
        name = f"spend-{choice['by']}-{choice['group']}-{choice['from']}-{choice['to']}.csv"
        req.send(200, csv_text(view["csv"], choice["by"], choice["group"]).encode(),
                 [("content-type", "text/csv; charset=utf-8"), ("content-disposition", f'attachment; filename="{name}"'),
                  ("cache-control", "no-store"), *SECURITY_HEADERS])
