"""The request log in the console: ``/console/requests`` (filters, newest first, cursor pages, export) and
``/console/requests/{id}`` (one request: timeline, routing, usage and cost, guardrails, cache, content).

The same filters and export as ``GET /admin/v1/logs`` (``ledger/filters.py``), read from the same store off
the event loop (a worker thread for SQLite, the pool for PostgreSQL), one indexed page per load: no count
over the log. A project key sees its own project only: its filter is pinned to it, naming another is
refused, and another project's request id reads as unknown. Content shows only where the log kept it (never
under zero data retention, which never stores it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlencode

from jinja2 import Environment

from interlock.console.sessions import Session, Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.tail import TailStream
from interlock.console.views import usd, utc_when
from interlock.console.web import redirect, send_page
from interlock.core.errors import GatewayError, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.core.pricing import Price, cost_parts
from interlock.ledger.filters import LOG_PARAMS, log_query, query_params, stream_export
from interlock.ledger.schema import GUARDRAIL_FILTERS, LogQuery, encode_cursor
from interlock.ledger.writer import LogStore
from interlock.routing.replay import usage_of

PAGE = "/console/requests"
#: The filters the page's form offers (``cursor`` and ``limit`` ride along in the links).
FORM_FIELDS = ("from", "to", "project", "key", "model", "vendor", "status", "tag", "min_cost", "max_cost",
               "response_cache", "guardrail", "q")
PAGE_SIZE = 50


class RequestLog:
    def __init__(self, env: Environment, sessions: Sessions, store: LogStore | None) -> None:
        self.env = env
        self.sessions = sessions
        self.store = store
        #: The catalog price of (model, vendor), for the drill-down's cost per part (None: not priced).
        self.price: Callable[[str, str], Price | None] | None = None
        #: ``/console/requests/tail`` (the live tail's stream; None: the log is off).
        self.tail: TailStream | None = None

    async def _session(self, req: Exchange) -> Session | None:
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(req.path + (f"?{req.query}" if req.query else "")))
        return session

    def _query(self, req: Exchange, session: Session, allowed: tuple[str, ...]) -> tuple[LogQuery, str, dict[str, str]]:
        # The form sends every field; an empty one is no filter.
        params = {k: v for k, v in query_params(req, allowed).items() if v.strip()}
        principal = session.principal
        if not principal.admin:
            named = params.get("project")
            if named and named != principal.project:
                raise PermissionDenied(f"This key belongs to project {principal.project!r}; it cannot read "
                                       f"{named[:64]!r}'s requests.", param="project")
        params.setdefault("limit", str(PAGE_SIZE))
        q, fmt = log_query(params)
        if not principal.admin:
            q = replace(q, project=principal.project)
        return q, fmt, params

    async def route(self, req: Exchange) -> None:
        rest = req.path[len(PAGE):].strip("/")
        if rest == "export":
            await self.export(req)
        elif rest == "tail" and self.tail is not None:
            await self.tail(req)
        elif rest:
            await self.detail(req, unquote(rest))
        else:
            await self.page(req)

    async def page(self, req: Exchange) -> None:
        session = await self._session(req)
        if session is None:
            return
        context: dict[str, Any] = {"title": "Requests", "active": "requests", **viewer(session),
                                   "admin": session.principal.admin, "project": session.principal.project,
                                   "error": None, "error_param": None, "filters": {}, "off": False,
                                   "live": None, "guardrail_filters": ("", *GUARDRAIL_FILTERS)}
        if self.store is None:
            send_page(req, self.env, 200, "requests.html", {**context, "off": True})
            return
        try:
            q, _, params = self._query(req, session, tuple(p for p in LOG_PARAMS if p not in ("format", "order")))
        except GatewayError as err:
            send_page(req, self.env, err.status, "requests.html", {**context, "error": err.message,
                                                                    "error_param": err.param, "filters": {}})
            return
        started = time.perf_counter()
        rows = await self.store.query(replace(q, limit=q.limit + 1))
        more = len(rows) > q.limit
        rows = rows[:q.limit]
        filters = {k: params[k] for k in FORM_FIELDS if params.get(k)}
        next_link = None
        if more and rows:
            next_link = PAGE + "?" + urlencode({**filters, "limit": q.limit,
                                                "cursor": encode_cursor(rows[-1]["received_at"], rows[-1]["id"])})
        # Following live: the newest page, unfiltered (a project key's stream is pinned to its project).
        live = {"since": rows[0]["received_at"] if rows else time.time()} \
            if self.tail is not None and not q.cursor and not filters else None
        send_page(req, self.env, 200, "requests.html", {
            **context, "rows": [row_view(r) for r in rows], "filters": filters, "next_link": next_link, "live": live,
            "first_link": PAGE + ("?" + urlencode(filters) if filters else "") if q.cursor else None,
            "export": {fmt: f"{PAGE}/export?" + urlencode({**filters, "format": fmt}) for fmt in ("csv", "jsonl")},
            "query_ms": round((time.perf_counter() - started) * 1000, 1)})

    async def export(self, req: Exchange) -> None:
        session = await self._session(req)
        if session is None:
            return
        if self.store is None:
            raise PermissionDenied("The request log is off on this gateway (logging.level: off).")
        q, fmt, _ = self._query(req, session, LOG_PARAMS)
        await stream_export(req, self.store, replace(q, cursor=None), "csv" if fmt == "json" else fmt)

    async def detail(self, req: Exchange, rid: str) -> None:
        session = await self._session(req)
        if session is None:
            return
        context: dict[str, Any] = {"title": f"Request {rid[:40]}", "active": "requests", **viewer(session),
                                   "missing": None}
        row = await self.store.get(rid) if self.store is not None else None
        principal = session.principal
        if row is None or (not principal.admin and row.get("project") != principal.project):
            send_page(req, self.env, 404, "request.html", {**context, "missing": rid[:80]})
            return
        price = self.price(str(row.get("model") or ""), str(row.get("vendor") or "")) if self.price else None
        send_page(req, self.env, 200, "request.html", {**context, "r": detail_view(row, price)})


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def row_view(r: dict[str, Any]) -> dict[str, Any]:
    """One line of the list, formatted (pure)."""
    status = r.get("status") or 0
    guard = r.get("guardrails") or []
    return {
        "id": r["id"], "when": utc_when(r.get("received_at")), "project": r.get("project") or "—",
        "key": r.get("key_id") or "—", "model": r.get("model") or r.get("requested_model") or "—",
        "vendor": r.get("vendor") or "—", "status": status, "ok": 200 <= status < 400,
        "duration": _ms(r.get("duration_ms")), "ttft": _ms(r.get("ttft_ms")),
        "tokens": f"{r.get('input_tokens') or 0:,} → {r.get('output_tokens') or 0:,}",
        "cost": usd(r.get("cost_picousd")), "estimated": bool(r.get("cost_estimated")),
        "cache": r.get("response_cache") or "", "tags": r.get("tags") or [],
        "guardrails": ", ".join(f"{g.get('detector')}={g.get('action')}" for g in guard if isinstance(g, dict)),
        "inbound": r.get("inbound") or "", "stream": bool(r.get("stream")),
    }


def cost_rows(r: dict[str, Any], price: Price | None) -> tuple[list[tuple[str, str, str]], str]:
    """The usage table: (part, tokens, cost at ``price``) per part the request used, and a note on the costs."""
    usage = usage_of(r)
    if usage is None:
        return [], ""
    parts = cost_parts(price, usage) if price is not None and price.known else None
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    shown = [("input", usage.input_tokens), ("cached input", usage.cache_read_tokens),
             ("cache write", usage.cache_write_tokens), ("output", usage.output_tokens - reasoning),
             ("reasoning", reasoning)]
    rows = [(name, f"{tokens:,}", usd(parts[name]) if parts is not None else "—") for name, tokens in shown
            if tokens or name in ("input", "output")]
    if parts is None:
        return rows, "No catalog price is known for this route: the parts are not priced."
    rows += [(name, "—", usd(value)) for name, value in parts.items()
             if value and name not in {n for n, _ in shown}]
    total, recorded = sum(parts.values()), r.get("cost_picousd")
    if recorded is not None and total != recorded:
        return rows, (f"The parts are priced at the catalog's current price ({usd(total)} in all); the request "
                      f"was charged {usd(recorded)} at the price of its time.")
    return rows, ""


def detail_view(r: dict[str, Any], price: Price | None = None) -> dict[str, Any]:
    """One request's page, formatted (pure): the list's fields, then the timeline and the breakdowns
    (``price``: the answering route's catalog price, for the cost of each part of the usage)."""
    out = row_view(r)
    received = r.get("received_at")
    timeline: list[dict[str, str]] = [{"at": "0 ms", "what": "received", "detail": out["inbound"]}]
    for i, a in enumerate(r.get("attempts") or []):
        if not isinstance(a, dict):
            continue
        start = a.get("start_ms")
        what = f"attempt {i + 1}: {a.get('vendor')} / {a.get('model')}"
        regions = a.get("regions")
        if isinstance(regions, list) and regions:
            what += f" ({', '.join(str(x) for x in regions)})"  # where it ran (data residency)
        result = f"{a.get('outcome')} · status {a.get('status')} · {_ms(a.get('latency_ms'))}"
        if a.get("error"):
            result += f" · {a['error']}"
        timeline.append({"at": _ms(start) if start is not None else "—", "what": what, "detail": result})
    if r.get("ttft_ms") is not None:
        timeline.append({"at": _ms(r["ttft_ms"]), "what": "first byte", "detail": ""})
    timeline.append({"at": _ms(r.get("duration_ms")), "what": "finished",
                     "detail": f"status {out['status']}" + (f" · {r['error_type']}" if r.get("error_type") else "")})
    raw_trace = r.get("routing_trace")
    trace: dict[str, Any] = raw_trace if isinstance(raw_trace, dict) else {}
    usage_rows, parts_note = cost_rows(r, price)
    out.update({
        "received": utc_when(received), "timeline": timeline, "explanation": r.get("explanation") or "",
        "policy": trace.get("policy") or "", "strategy": trace.get("strategy") or "",
        "candidates": [c for c in trace.get("candidates") or [] if isinstance(c, dict)],
        "usage": usage_rows, "parts_note": parts_note,
        "cost_note": "estimated (the vendor sent no usage)" if r.get("cost_estimated") else "",
        "saved": usd(r.get("cache_saved_picousd")) if r.get("cache_saved_picousd") is not None else "",
        "guard_rows": [g for g in r.get("guardrails") or [] if isinstance(g, dict)],
        "error": r.get("error_message") or "", "end_user": r.get("end_user") or "",
        "client_ip": r.get("client_ip") or "",
        "content_level": r.get("content_level") or "",
        "request_content": r.get("request_content"), "response_content": r.get("response_content"),
        "output_tps": r.get("output_tps"), "requested_model": r.get("requested_model") or "",
    })
    return out
