"""``GET /admin/v1/logs``, ``/admin/v1/logs/{id}`` and ``/admin/v1/spend`` (admin key only).

Query parameters are validated like request bodies: a bad one is a 400 in
OpenAI's error shape that names it (``param: "from"``). Listing uses cursor
pagination on (received_at, id), which stays correct while records land and
costs the same on page 1000 as on page 1. ``format=jsonl`` or ``format=csv``
streams every matching record (an export) instead of one page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import parse_qs, unquote

import orjson

from interlock.core.errors import InvalidRequest, NotFound, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.governance.auth import Authenticator
from interlock.ledger.export import csv_lines, parse_day, parse_time
from interlock.ledger.schema import (
    GROUPS,
    RESPONSE_CACHE_FILTERS,
    LogQuery,
    SpendQuery,
    decode_cursor,
    encode_cursor,
)
from interlock.ledger.writer import LogStore

MAX_LIMIT = 1000
EXPORT_PAGE = 1000
LOG_PARAMS = ("from", "to", "project", "key", "model", "vendor", "status", "tag", "min_cost", "response_cache",
              "q", "limit", "cursor", "order", "format")
SPEND_PARAMS = ("group_by", "from", "to", "project", "key", "model", "vendor")


def query_params(req: Exchange, allowed: tuple[str, ...]) -> dict[str, str]:
    raw = parse_qs(req.query, keep_blank_values=True)
    out: dict[str, str] = {}
    for key, values in raw.items():
        if key not in allowed:
            raise InvalidRequest(f"Unknown query parameter '{key}'; expected one of: {', '.join(allowed)}.", param=key)
        if len(values) > 1:
            raise InvalidRequest(f"'{key}' may be given once.", param=key)
        out[key] = values[0]
    return out


def log_query(params: Mapping[str, str]) -> tuple[LogQuery, str]:
    limit = 50
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"Invalid 'limit': expected an integer from 1 to {MAX_LIMIT}, got "
                                 f"{params['limit']!r}.", param="limit")
    status = params.get("status")
    if status is not None and status not in ("ok", "error") and not (status.isdigit() and len(status) == 3):
        raise InvalidRequest(f"Invalid 'status': expected ok, error or an HTTP status code, got {status!r}.",
                             param="status")
    min_cost = None
    if "min_cost" in params:
        try:
            usd = float(params["min_cost"])
        except ValueError:
            usd = -1.0
        if usd < 0:
            raise InvalidRequest(f"Invalid 'min_cost': expected a non-negative amount in USD, got "
                                 f"{params['min_cost']!r}.", param="min_cost")
        min_cost = round(usd * 1e12)
    response_cache = params.get("response_cache") or None
    if response_cache is not None and response_cache not in RESPONSE_CACHE_FILTERS:
        raise InvalidRequest(f"Invalid 'response_cache': expected {', '.join(RESPONSE_CACHE_FILTERS)}, got "
                             f"{response_cache!r}.", param="response_cache")
    cursor = None
    if params.get("cursor"):
        try:
            cursor = decode_cursor(params["cursor"])
        except ValueError as exc:
            raise InvalidRequest(f"Invalid 'cursor': {exc}.", param="cursor") from None
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"Invalid 'order': expected asc or desc, got {order!r}.", param="order")
    fmt = params.get("format", "json")
    if fmt not in ("json", "jsonl", "csv"):
        raise InvalidRequest(f"Invalid 'format': expected json, jsonl or csv, got {fmt!r}.", param="format")
    q = LogQuery(
        since=parse_time(params["from"], "from") if params.get("from") else None,
        until=parse_time(params["to"], "to") if params.get("to") else None,
        project=params.get("project") or None, key_id=params.get("key") or None,
        model=params.get("model") or None, vendor=params.get("vendor") or None,
        status=status, tag=params.get("tag") or None, min_cost_picousd=min_cost, response_cache=response_cache,
        text=params.get("q") or None,
        limit=limit, cursor=cursor, ascending=order == "asc",
    )
    return q, fmt


def spend_query(params: Mapping[str, str]) -> SpendQuery:
    group_by = params.get("group_by", "day")
    if group_by not in GROUPS:
        raise InvalidRequest(f"Invalid 'group_by': expected one of {', '.join(GROUPS)}, got {group_by!r}.",
                             param="group_by")
    return SpendQuery(
        group_by=group_by,
        since=parse_day(params["from"], "from") if params.get("from") else None,
        until=parse_day(params["to"], "to") if params.get("to") else None,
        project=params.get("project") or None, key_id=params.get("key") or None,
        model=params.get("model") or None, vendor=params.get("vendor") or None,
    )


def require_admin(auth: Authenticator, req: Exchange, refusal: str) -> None:
    """Admin-only endpoints: a project key gets 403 with ``refusal``."""
    principal = auth.authenticate(req.header("authorization"), req.header("x-api-key"))
    if principal.kind != "admin":
        raise PermissionDenied(refusal)


class AdminLogs:
    def __init__(self, store: LogStore, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth

    def _admin(self, req: Exchange) -> None:
        require_admin(self.auth, req, "The request log and spend are readable with the admin key only.")

    async def list(self, req: Exchange) -> None:
        self._admin(req)
        q, fmt = log_query(query_params(req, LOG_PARAMS))
        if fmt != "json":
            await self._export(req, q, fmt)
            return
        rows = await self.store.query(replace(q, limit=q.limit + 1))
        more = len(rows) > q.limit
        rows = rows[:q.limit]
        cursor = encode_cursor(rows[-1]["received_at"], rows[-1]["id"]) if more and rows else None
        req.json(200, {"object": "list", "data": rows, "has_more": more, "next_cursor": cursor})

    async def _export(self, req: Exchange, q: LogQuery, fmt: str) -> None:
        ctype = "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"
        out = req.stream(200, [("content-type", ctype),
                               ("content-disposition", f'attachment; filename="interlock-logs.{fmt}"')])
        page = replace(q, limit=EXPORT_PAGE)
        first = True
        while True:
            rows = await self.store.query(page)
            if fmt == "jsonl":
                data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
            else:
                data = csv_lines(rows, first)
            first = False
            if data:
                await out.send_bytes(data)
            if len(rows) < EXPORT_PAGE:
                return
            page = replace(page, cursor=(rows[-1]["received_at"], rows[-1]["id"]))

    async def detail(self, req: Exchange) -> None:
        self._admin(req)
        rid = unquote(req.path.rstrip("/").rsplit("/", 1)[-1])
        row = await self.store.get(rid)
        if row is None:
            raise NotFound(f"No request with id '{rid}' in the log (it may be older than the retention period, "
                           "or logging was off).", param="id")
        req.json(200, row)

    async def spend(self, req: Exchange) -> None:
        self._admin(req)
        q = spend_query(query_params(req, SPEND_PARAMS))
        rows = await self.store.spend(q)
        # Tag rows overlap (a request carries several tags): no total then.
        total = sum(r["cost_picousd"] for r in rows) if q.group_by != "tag" else None
        saved = sum(r["saved_picousd"] for r in rows) if q.group_by != "tag" else None
        req.json(200, {"object": "spend", "group_by": q.group_by, "from": q.since, "to": q.until, "data": rows,
                       "total_cost_usd": total / 1e12 if total is not None else None,
                       "total_saved_usd": saved / 1e12 if saved is not None else None})

