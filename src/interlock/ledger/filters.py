"""The request log's filters as query parameters, and its CSV / JSON-lines export: shared by the admin API
(``api/admin_logs.py``) and the console's request log (``console/requests.py``).

A bad parameter is a 400 naming it (``param: "from"``). Listing uses cursor pagination on (received_at, id),
which stays correct while records land and costs the same on page 1000 as on page 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import parse_qs

import orjson

from interlock.core.errors import InvalidRequest
from interlock.core.exchange import Exchange
from interlock.ledger.export import csv_lines, parse_time
from interlock.ledger.schema import GUARDRAIL_FILTERS, RESPONSE_CACHE_FILTERS, LogQuery, decode_cursor
from interlock.ledger.writer import LogStore

MAX_LIMIT = 1000
EXPORT_PAGE = 1000
LOG_PARAMS = ("from", "to", "project", "key", "model", "vendor", "status", "tag", "min_cost", "max_cost",
              "response_cache", "guardrail", "q", "limit", "cursor", "order", "format")


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


def _usd_param(params: Mapping[str, str], name: str) -> int | None:
    """A cost bound in USD, as picodollars (None when absent)."""
    if name not in params:
        return None
    try:
        usd = float(params[name])
    except ValueError:
        usd = -1.0
    if not 0 <= usd < 1e9:
        raise InvalidRequest(f"Invalid '{name}': expected a non-negative amount in USD, got {params[name]!r}.",
                             param=name)
    return round(usd * 1e12)


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
    min_cost, max_cost = _usd_param(params, "min_cost"), _usd_param(params, "max_cost")
    if min_cost is not None and max_cost is not None and max_cost < min_cost:
        raise InvalidRequest(f"Invalid 'max_cost': {params['max_cost']!r} is below min_cost "
                             f"{params['min_cost']!r}.", param="max_cost")
    response_cache = params.get("response_cache") or None
    if response_cache is not None and response_cache not in RESPONSE_CACHE_FILTERS:
        raise InvalidRequest(f"Invalid 'response_cache': expected {', '.join(RESPONSE_CACHE_FILTERS)}, got "
                             f"{response_cache!r}.", param="response_cache")
    guardrail = params.get("guardrail") or None
    if guardrail is not None and guardrail not in GUARDRAIL_FILTERS:
        raise InvalidRequest(f"Invalid 'guardrail': expected {', '.join(GUARDRAIL_FILTERS)}, got {guardrail!r}.",
                             param="guardrail")
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
        status=status, tag=params.get("tag") or None, min_cost_picousd=min_cost, max_cost_picousd=max_cost,
        response_cache=response_cache, guardrail=guardrail,
        text=params.get("q") or None,
        limit=limit, cursor=cursor, ascending=order == "asc",
    )
    return q, fmt


async def stream_export(req: Exchange, store: LogStore, q: LogQuery, fmt: str) -> None:
    """Every record ``q`` matches, as JSON lines or CSV, streamed a page at a time."""
    ctype = "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"
    out = req.stream(200, [("content-type", ctype),
                           ("content-disposition", f'attachment; filename="interlock-logs.{fmt}"')])
    page = replace(q, limit=EXPORT_PAGE)
    first = True
    while True:
        rows = await store.query(page)
        data = b"".join(orjson.dumps(r) + b"\n" for r in rows) if fmt == "jsonl" else csv_lines(rows, first)
        first = False
        if data:
            await out.send_bytes(data)
        if len(rows) < EXPORT_PAGE:
            return
        page = replace(page, cursor=(rows[-1]["received_at"], rows[-1]["id"]))
