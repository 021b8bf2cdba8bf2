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
from urllib.parse import unquote

from interlock.core.errors import InvalidRequest, NotFound, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.governance.auth import Authenticator
from interlock.ledger.export import parse_day
from interlock.ledger.filters import LOG_PARAMS, log_query, query_params, stream_export
from interlock.ledger.schema import (
    DERIVED_GROUPS,
    SPEND_GROUPS,
    SpendQuery,
    by_region,
    encode_cursor,
)
from interlock.ledger.writer import LogStore

SPEND_PARAMS = ("group_by", "from", "to", "project", "key", "model", "vendor")


def spend_query(params: Mapping[str, str]) -> SpendQuery:
    group_by = params.get("group_by", "day")
    if group_by not in SPEND_GROUPS:
        raise InvalidRequest(f"Invalid 'group_by': expected one of {', '.join(SPEND_GROUPS)}, got {group_by!r}.",
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
    def __init__(self, store: LogStore, auth: Authenticator,
                 regions: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.store = store
        self.auth = auth
        #: Each configured vendor instance's regions, for spend by region.
        self.regions = regions or {}

    def _admin(self, req: Exchange) -> None:
        require_admin(self.auth, req, "The request log and spend are readable with the admin key only.")

    async def list(self, req: Exchange) -> None:
        self._admin(req)
        q, fmt = log_query(query_params(req, LOG_PARAMS))
        if fmt != "json":
            await stream_export(req, self.store, q, fmt)
            return
        rows = await self.store.query(replace(q, limit=q.limit + 1))
        more = len(rows) > q.limit
        rows = rows[:q.limit]
        cursor = encode_cursor(rows[-1]["received_at"], rows[-1]["id"]) if more and rows else None
        req.json(200, {"object": "list", "data": rows, "has_more": more, "next_cursor": cursor})

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
        if q.group_by in DERIVED_GROUPS:
            rows = by_region(await self.store.spend(replace(q, group_by=DERIVED_GROUPS[q.group_by])), self.regions)
        else:
            rows = await self.store.spend(q)
        # Tag rows overlap (a request carries several tags): no total then.
        total = sum(r["cost_picousd"] for r in rows) if q.group_by != "tag" else None
        saved = sum(r["saved_picousd"] for r in rows) if q.group_by != "tag" else None
        req.json(200, {"object": "spend", "group_by": q.group_by, "from": q.since, "to": q.until, "data": rows,
                       "total_cost_usd": total / 1e12 if total is not None else None,
                       "total_saved_usd": saved / 1e12 if saved is not None else None})

