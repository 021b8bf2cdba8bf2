"""``/console/guardrails``: the detectors' settings (the operator's floor and each project's effective
settings), detections by detector and action over the last days, recent events, and a test box.

Counts come from the requests of the last :data:`DAYS` days that a guardrail detected something in, read
newest first through the log's partial guardrail index (``ledger.migrations``: it holds only those
requests), so clean traffic costs nothing and a page costs the same whether the log holds ten thousand or
ten million rows. They are exact up to :data:`MAX_ROWS` such requests, read in pages of :data:`PAGE_ROWS`;
past that the page says from when on it counted. A log record's ``guardrails`` list names the
detector, the action and the entity types with counts, never the matched text, and neither does this page.

The test box is ``POST /v1/guardrails/check``'s own code (``api.guardrails.GuardrailsApi.verdict``, handed in
by app.py as :data:`Check`, since ``api`` and ``console`` do not import each other): the text goes in the
POST body of a CSRF-checked form, is checked under the viewer's project settings (the admin key may pick a
project), and is neither logged nor stored; the answer shows offsets and types, not the matched values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from jinja2 import Environment

from interlock.console.forms import posted
from interlock.console.sessions import Session, Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.views import utc_when
from interlock.console.web import redirect, send_page
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.errors import GatewayError
from interlock.core.exchange import Exchange
from interlock.governance.service import Governance
from interlock.guardrails.settings import (
    DETECTORS,
    GuardrailConfig,
    ProjectGuardrails,
    effective,
    settable,
)
from interlock.ledger.schema import LogQuery
from interlock.ledger.writer import LogStore
from interlock.observability import zdr_log

PAGE = "/console/guardrails"
#: ``(project override, input, detectors)`` → the ``/v1/guardrails/check`` answer; raises ``GatewayError``.
Check = Callable[[ProjectGuardrails | None, object, object], Awaitable[dict[str, Any]]]
DAYS = 7
PAGE_ROWS = 1000
MAX_ROWS = 5000
RECENT = 20
#: Under the console's 16 KiB form limit with room for URL-encoding (the textarea has it as maxlength).
MAX_TEXT = 5_000
#: The column order of the counts (``unchecked``: fail_mode open let a request through unchecked).
ACTION_ORDER = ("monitor", "redact", "block", "unchecked", "unavailable")


def describe(name: str, values: dict[str, Any]) -> list[str]:
    """The details of one detector's setting beside its action, as short phrases."""
    out = [f"fail {values['fail_mode']}"]
    if name == "prompt_injection":
        out.append(f"threshold {values['threshold']:g} (indirect {values['indirect_threshold']:g})")
    else:
        if values.get("output"):
            out.append("answers scanned")
        if values.get("restore"):
            out.append("values restored")
    return out


def setting_rows(settings: dict[str, dict[str, Any]], floor: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """One row per detector: action, details, and whether it is tighter than the floor."""
    return [{"detector": name, "action": values["action"], "details": describe(name, values),
             "tightened": floor is not None and values != floor[name]}
            for name, values in settings.items()]


class Counts:
    """Detections of a window of log records: per day and detector, per detector and action, the newest."""

    def __init__(self, today: dt.date) -> None:
        self.days = [(today - dt.timedelta(days=i)).isoformat() for i in range(DAYS - 1, -1, -1)]
        self.by_day: dict[str, dict[str, int]] = {d: dict.fromkeys(DETECTORS, 0) for d in self.days}
        self.by_action: dict[str, dict[str, int]] = {n: dict.fromkeys(ACTION_ORDER, 0) for n in DETECTORS}
        self.recent: list[dict[str, Any]] = []
        self.scanned = 0
        self.oldest: float | None = None

    def add(self, record: dict[str, Any]) -> None:
        self.scanned += 1
        self.oldest = record["received_at"]
        found = record.get("guardrails")
        if not isinstance(found, list) or not found:
            return
        day = dt.datetime.fromtimestamp(record["received_at"], dt.UTC).date().isoformat()
        events = []
        for item in found:
            if not isinstance(item, dict) or item.get("detector") not in DETECTORS:
                continue
            name = str(item["detector"])
            action = "unchecked" if item.get("unchecked") else str(item.get("action", ""))
            if action not in ACTION_ORDER:
                continue
            if day in self.by_day:
                self.by_day[day][name] += 1
            self.by_action[name][action] += 1
            entities = item.get("entities")
            kinds = ([f"{v} {k}" for k, v in sorted(entities.items())] if isinstance(entities, dict) else [])
            score = item.get("score")
            events.append({"detector": name, "action": action, "entities": kinds,
                           "score": f"{score:.2f}" if isinstance(score, int | float) else "—"})
        if events and len(self.recent) < RECENT:
            self.recent.append({"id": record["id"], "when": utc_when(record["received_at"])[:19],
                                "project": record.get("project") or "—", "model": record.get("model") or "—",
                                "status": record.get("status"), "events": events})

    def chart(self) -> list[dict[str, Any]]:
        """Per day: the total and each detector's count, with bar widths in percent of the busiest day."""
        totals = {d: sum(c.values()) for d, c in self.by_day.items()}
        top = max(totals.values(), default=0) or 1
        return [{"day": d, "total": totals[d], "counts": self.by_day[d],
                 "width": round(100 * totals[d] / top, 1)} for d in self.days]

    def action_rows(self) -> list[dict[str, Any]]:
        return [{"detector": n, "counts": self.by_action[n], "total": sum(self.by_action[n].values())}
                for n in DETECTORS]


class GuardrailsPage:
    def __init__(self, env: Environment, sessions: Sessions, gov: Governance, config: GuardrailConfig,
                 log: LogStore | None, check: Check | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.env = env
        self.sessions = sessions
        self.gov = gov
        self.config = config
        self.log = log
        self.check = check
        self.clock = clock

    async def route(self, req: Exchange) -> None:
        """``GET /console/guardrails`` (the page) and ``POST`` (the test box)."""
        if req.method == "POST":
            await self.test(req)
        else:
            await self.page(req)

    def _projects(self, session: Session) -> list[str]:
        principal = session.principal
        if not principal.admin:
            return [principal.project] if principal.project else []
        return sorted(set(self.gov.defs.projects) | set(self.config.projects))

    def _override(self, project: str) -> ProjectGuardrails | None:
        stored = self.gov.defs.projects.get(project)
        return self.config.override_for(project, stored.guardrails if stored is not None else None)

    async def _counts(self, session: Session) -> Counts:
        now = self.clock.time()
        counts = Counts(dt.datetime.fromtimestamp(now, dt.UTC).date())
        if self.log is None:
            return counts
        principal = session.principal
        since = dt.datetime.fromisoformat(counts.days[0]).replace(tzinfo=dt.UTC).timestamp()
        cursor: tuple[float, str] | None = None
        while counts.scanned < MAX_ROWS:
            rows = await self.log.query(LogQuery(since=since, project=None if principal.admin else principal.project,
                                                 guardrail="any", limit=PAGE_ROWS, cursor=cursor))
            for row in rows:
                counts.add(row)
            if len(rows) < PAGE_ROWS:
                counts.oldest = None  # the whole window was read
                break
            cursor = (rows[-1]["received_at"], rows[-1]["id"])
        return counts

    async def page(self, req: Exchange, *, status: int = 200, session: Session | None = None,
                   errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                   result: dict[str, Any] | None = None) -> None:
        session = session or await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE))
            return
        await self.gov.poll()
        principal = session.principal
        floor = settable(self.config.floor)
        projects = []
        for pid in self._projects(session):
            eff = settable(effective(self.config.floor, self._override(pid)))
            projects.append({"id": pid, "rows": setting_rows(eff, floor), "own": self._override(pid) is not None})
        counts = await self._counts(session)
        send_page(req, self.env, status, "guardrails.html", {
            "title": "Guardrails", "active": "guardrails", **viewer(session), "admin": principal.admin,
            "project": principal.project or "", "floor": setting_rows(floor, None), "projects": projects,
            "detectors": DETECTORS, "actions": ACTION_ORDER, "log_on": self.log is not None,
            "chart": counts.chart(), "by_action": counts.action_rows(), "recent": counts.recent,
            "scanned": counts.scanned, "cut": utc_when(counts.oldest)[:16] if counts.oldest is not None else "",
            "max_rows": MAX_ROWS, "days": DAYS, "test_on": self.check is not None, "max_text": MAX_TEXT,
            "errors": errors or {}, "form": form or {}, "result": result,
            "test_projects": [p["id"] for p in projects]})

    async def test(self, req: Exchange) -> None:
        zdr_log.mark(True)  # the text is the viewer's content: a traceback of this request keeps none of it
        got = await posted(req, self.env, self.sessions, PAGE)
        if got is None:
            return
        form = {k: got.form.get(k, "") for k in ("text", "project")}
        chosen = [d for d in DETECTORS if got.form.get(f"d-{d}")]
        form.update({f"d-{d}": "on" for d in chosen})
        principal = got.session.principal
        errors: dict[str, str] = {}
        text = form["text"]
        if self.check is None:
            errors["text"] = "The test box is not available on this gateway."
        elif not text.strip():
            errors["text"] = "Type or paste a text to check."
        elif len(text) > MAX_TEXT:
            errors["text"] = f"At most {MAX_TEXT:,} characters ({len(text):,} given)."
        override = principal.guardrails if isinstance(principal.guardrails, ProjectGuardrails) else None
        if principal.admin and form["project"]:
            await self.gov.poll()
            if form["project"] not in self._projects(got.session):
                errors["project"] = f"No project {form['project'][:64]!r}."
            else:
                override = self._override(form["project"])
        if errors or self.check is None:
            await self.page(req, status=400, session=got.session, errors=errors, form=form)
            return
        try:
            answer = await self.check(override, text, chosen or None)
        except GatewayError as exc:
            field = "detectors" if exc.param == "detectors" else "text"
            await self.page(req, status=exc.status if exc.status < 500 else 503, session=got.session,
                            errors={field: exc.message}, form=form)
            return
        await self.page(req, session=got.session, form=form, result=answer)
