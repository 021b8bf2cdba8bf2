"""The console's Overview: ``/console/overview?window=1h|24h|7d|30d``.

Requests, spend, tokens in and out, error rate, TTFT p50/p95 and output speed p50 over the window, as
charts and tables; the top models, projects (admin only), keys and tags by spend; and the routes' live
health. Every figure but the health comes from rollups, never from the log's rows: the hourly usage rollup
(``ledger/usage.py``: one row per hour for the series, a few per hour for the top models and projects) and
the daily spend rollups for keys and tags (whole UTC days: the window rounded out). The health is this
gateway's live statistics and circuit breakers (``routing/stats.py``, ``routing/circuit.py``), handed in as
one callable. A project key sees its own project only; naming another is refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import add
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment

from interlock.console.charts import count, line_chart, ms, pct, rate, stacked_chart, usd
from interlock.console.sessions import Session, Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.web import redirect, send_page
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.errors import GatewayError, InvalidRequest, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.ledger.filters import query_params
from interlock.ledger.schema import day_of, spend_rows
from interlock.ledger.usage import (
    ALL,
    COUNTERS,
    TPS_EDGES,
    TTFT_COLUMNS,
    TTFT_EDGES,
    dims_read,
    models_read,
    percentile,
    projects_read,
    series_read,
)
from interlock.ledger.writer import LogStore
from interlock.routing.stats import LiveStats

PAGE = "/console/overview"
#: window -> (hours covered, hours per bucket, label format of a bucket, what the window is in words).
WINDOWS: dict[str, tuple[int, int, str, str]] = {
    "1h": (2, 1, "%H:00", "the current hour and the one before it"),
    "24h": (24, 1, "%H:00", "the last 24 hours, one bar per hour"),
    "7d": (168, 6, "%a %Hh", "the last 7 days, one bar per 6 hours"),
    "30d": (720, 24, "%m-%d", "the last 30 days, one bar per UTC day"),
}
DEFAULT_WINDOW = "24h"
TOP = 10
_NC = len(COUNTERS)
_T0, _T1 = _NC, _NC + len(TTFT_COLUMNS)
REQ, ERR, TIN, TOUT, COST, SAVED = range(_NC)


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    first_hour: int
    until_hour: int
    bucket_hours: int
    label_format: str
    words: str

    @property
    def buckets(self) -> int:
        return (self.until_hour - self.first_hour) // self.bucket_hours


def window_of(name: str, now: float) -> Window:
    """The hours a window covers at ``now``, whole buckets aligned to UTC (the last one still running)."""
    span, per, fmt, words = WINDOWS[name]
    now_hour = int(now // 3600)
    last_bucket = now_hour // per
    first = (last_bucket - span // per + 1) * per
    return Window(name, first, (last_bucket + 1) * per, per, fmt, words)


def _hour_label(hour: int, fmt: str) -> str:
    return dt.datetime.fromtimestamp(hour * 3600, dt.UTC).strftime(fmt)


def series_view(window: Window, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The window's charts and totals from ``series_read`` rows (hour, then ``USAGE_VALUES``) (pure)."""
    n = window.buckets
    width = len(rows[0]) - 1 if rows else _T1 + len(TPS_EDGES) + 1
    buckets = [[0] * width for _ in range(n)]
    first, per = window.first_hour, window.bucket_hours
    for row in rows:
        i = (int(row[0]) - first) // per
        if 0 <= i < n:  # the columns are NOT NULL integers: summed in C
            buckets[i] = list(map(add, buckets[i], row[1:]))
    total = [0] * width
    for b in buckets:
        total = list(map(add, total, b))
    labels = [_hour_label(window.first_hour + i * window.bucket_hours, window.label_format) for i in range(n)]
    ttft50 = [percentile(b[_T0:_T1], 0.5, TTFT_EDGES) for b in buckets]
    ttft95 = [percentile(b[_T0:_T1], 0.95, TTFT_EDGES) for b in buckets]
    tps50 = [percentile(b[_T1:], 0.5, TPS_EDGES) for b in buckets]
    errors = [100.0 * b[ERR] / b[REQ] if b[REQ] else None for b in buckets]
    charts = {
        "requests": stacked_chart("c-req", labels, [(b[REQ] - b[ERR], b[ERR]) for b in buckets],
                                  ("succeeded", "errors"), count, title="Requests per bucket"),
        "spend": stacked_chart("c-spend", labels, [(b[COST] / 1e12,) for b in buckets], ("spend",),
                               lambda v: usd(v * 1e12), title="Spend per bucket (USD)"),
        "tokens": stacked_chart("c-tok", labels, [(b[TIN], b[TOUT]) for b in buckets], ("input", "output"), count,
                                title="Tokens per bucket"),
        "errors": line_chart("c-err", labels, [("error rate", errors)], lambda v: f"{v:.1f}%",
                             title="Error rate per bucket"),
        "ttft": line_chart("c-ttft", labels, [("p50", ttft50), ("p95", ttft95)], ms,
                           title="Time to first token per bucket"),
        "tps": line_chart("c-tps", labels, [("p50", tps50)], rate, title="Output tokens per second per bucket"),
    }
    table = [{"label": labels[i], "requests": f"{b[REQ]:,}", "errors": pct(b[ERR], b[REQ]), "spend": usd(b[COST]),
              "input": f"{b[TIN]:,}", "output": f"{b[TOUT]:,}", "ttft50": ms(ttft50[i]), "ttft95": ms(ttft95[i]),
              "tps50": rate(tps50[i])} for i, b in enumerate(buckets)]
    totals = {
        "requests": f"{total[REQ]:,}", "errors": f"{total[ERR]:,}", "error_rate": pct(total[ERR], total[REQ]),
        "spend": usd(total[COST]), "saved": usd(total[SAVED]), "input": f"{total[TIN]:,}",
        "output": f"{total[TOUT]:,}", "ttft50": ms(percentile(total[_T0:_T1], 0.5, TTFT_EDGES)),
        "ttft95": ms(percentile(total[_T0:_T1], 0.95, TTFT_EDGES)),
        "tps50": rate(percentile(total[_T1:], 0.5, TPS_EDGES)),
    }
    return {"charts": charts, "table": table, "totals": totals, "empty": total[REQ] == 0}


def top_rows(rows: Sequence[Sequence[Any]], keys: int, total_cost: int) -> list[dict[str, Any]]:
    """Top ``TOP`` groups by spend (then requests) from rollup sums: ``keys`` name columns, then ``USAGE_VALUES``."""
    ranked = sorted(rows, key=lambda r: (-int(r[keys + COST] or 0), -int(r[keys + REQ] or 0), tuple(r[:keys])))
    out = []
    for r in ranked[:TOP]:
        cost = int(r[keys + COST] or 0)
        requests = int(r[keys + REQ] or 0)
        out.append({"name": " · ".join(str(v) or "—" for v in r[:keys]), "requests": f"{requests:,}",
                    "errors": pct(int(r[keys + ERR] or 0), requests), "spend": usd(cost),
                    "tokens": f"{int(r[keys + TIN] or 0):,} → {int(r[keys + TOUT] or 0):,}",
                    "share": pct(cost, total_cost), "share_w": round(100.0 * cost / total_cost, 1) if total_cost else 0})
    return out


def spend_top(rows: Sequence[dict[str, Any]], group: str, total_cost: int) -> list[dict[str, Any]]:
    """Top keys or tags from ``LogStore.spend`` rows (daily rollups)."""
    ranked = sorted(rows, key=lambda r: (-r["cost_picousd"], -r["requests"], str(r[group])))
    return [{"name": r[group] or "—", "requests": f"{r['requests']:,}", "errors": pct(r["errors"], r["requests"]),
             "spend": usd(r["cost_picousd"]), "tokens": f"{r['input_tokens']:,} → {r['output_tokens']:,}",
             "share": pct(r["cost_picousd"], total_cost),
             "share_w": round(100.0 * r["cost_picousd"] / total_cost, 1) if total_cost else 0}
            for r in ranked[:TOP]]


def route_health(stats: LiveStats, circuit: Callable[[str], str]) -> list[dict[str, Any]]:
    """Per route (vendor, model) with live traffic: requests, uptime and error rate (30 min, 1 day), circuit."""
    out = []
    for key in sorted(stats.keys()):
        summary = stats.summary(key)
        if summary is None:
            continue
        vendor, _, model = key.partition("/")
        recent, day = summary.windows["30m"], summary.windows["1d"]
        state = circuit(key)
        out.append({"vendor": vendor, "model": model, "requests_30m": f"{recent.requests:,}",
                    "requests_1d": f"{day.requests:,}",
                    "uptime": _ratio(recent.uptime), "uptime_1d": _ratio(day.uptime),
                    "errors": _ratio(recent.error_rate), "errors_1d": _ratio(day.error_rate),
                    "circuit": state.replace("_", "-"), "circuit_ok": state == "closed"})
    return out


def _ratio(value: float | None) -> str:
    return "—" if value is None else pct(value, 1.0)


class OverviewPage:
    def __init__(self, env: Environment, sessions: Sessions, store: LogStore | None,
                 health: Callable[[], list[dict[str, Any]]], clock: Clock = SYSTEM_CLOCK) -> None:
        self.env = env
        self.sessions = sessions
        self.store = store
        self.health = health
        self.clock = clock

    async def page(self, req: Exchange) -> None:
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(req.path + (f"?{req.query}" if req.query else "")))
            return
        admin = session.principal.admin
        context: dict[str, Any] = {"title": "Overview", "active": "overview", **viewer(session), "admin": admin,
                                   "own_project": session.principal.project, "error": None, "error_param": None,
                                   "off": self.store is None, "windows": list(WINDOWS), "window": DEFAULT_WINDOW,
                                   "project": "", "health": self.health(), "data": None}
        try:
            window, project = self._params(req, session)
        except GatewayError as err:
            # The form keeps what was typed (escaped by the template), so it can be corrected in place.
            typed = dict(parse_qsl(req.query))
            window = typed.get("window", "")
            send_page(req, self.env, err.status, "overview.html",
                      {**context, "error": err.message, "error_param": err.param,
                       "project": typed.get("project", "").strip()[:200],
                       "window": window if window in WINDOWS else DEFAULT_WINDOW})
            return
        context.update(window=window, project=project if admin else "")
        if self.store is not None:
            context["data"] = await self.view(project or None if admin else session.principal.project, window)
        send_page(req, self.env, 200, "overview.html", context)

    @staticmethod
    def _params(req: Exchange, session: Session) -> tuple[str, str]:
        params = query_params(req, ("window", "project"))
        window = params.get("window") or DEFAULT_WINDOW
        if window not in WINDOWS:
            raise InvalidRequest(f"Unknown window {window[:16]!r}; choose one of {', '.join(WINDOWS)}.", param="window")
        project = params.get("project", "").strip()
        principal = session.principal
        if not principal.admin and project and project != principal.project:
            raise PermissionDenied(f"This key belongs to project {principal.project!r}; it cannot read "
                                   f"{project[:64]!r}'s figures.", param="project")
        return window, project

    async def view(self, project: str | None, window_name: str) -> dict[str, Any]:
        """The page's figures (every rollup read at once, off the loop): what the template shows."""
        assert self.store is not None
        store = self.store
        started = time.perf_counter()
        w = window_of(window_name, self.clock.time())
        scope = project or ALL
        since, until = day_of(w.first_hour * 3600), day_of((w.until_hour - 1) * 3600)
        # A window of whole UTC days (30 d) reads its top models from the daily rollups: a row per model and day
        # instead of one per model, vendor and hour.
        daily = w.bucket_hours == 24
        models_source = (dims_read("model", since, until, project) if daily
                         else models_read(scope, w.first_hour, w.until_hour))
        reads: list[Any] = [store.read_rollup(series_read(scope, w.first_hour, w.until_hour)),
                            store.read_rollup(models_source),
                            store.read_rollup(dims_read("key", since, until, project)),
                            store.read_rollup(dims_read("tag", since, until, project))]
        if project is None:
            reads.append(store.read_rollup(projects_read(w.first_hour, w.until_hour)))
        results = await asyncio.gather(*reads)
        series, models = results[:2]
        keys, tags = spend_rows("key", results[2]), spend_rows("tag", results[3])
        view = series_view(w, series)
        total_cost = sum(int(r[COST + 1] or 0) for r in series)
        day_cost = sum(r["cost_picousd"] for r in keys)
        view.update({
            "words": w.words, "days": since if since == until else f"{since} to {until}",
            "models": (spend_top(spend_rows("model", models), "model", total_cost) if daily
                       else top_rows(models, 1, total_cost)),
            "projects": top_rows(results[4], 1, total_cost) if project is None else None,
            "keys": spend_top(keys, "key", day_cost), "tags": spend_top(tags, "tag", day_cost),
            "query_ms": round((time.perf_counter() - started) * 1000, 1),
        })
        return view
