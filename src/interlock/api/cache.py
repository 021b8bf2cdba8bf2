"""``GET /admin/v1/cache`` (statistics) and ``DELETE /admin/v1/cache`` (all, or by namespace, project, model).

Admin key only. With the memory backend each worker holds its own cache: a delete is applied by the worker
that answers it at once and by the others within a second (``cache/store.py``, the deletion journal); the
statistics are the answering worker's (``/metrics`` sums every worker's).
"""

from __future__ import annotations

from interlock.api.admin_logs import require_admin
from interlock.cache.response_cache import ResponseCache
from interlock.cache.store import Selector
from interlock.core.exchange import Exchange
from interlock.governance.auth import Authenticator
from interlock.ledger.filters import query_params

DELETE_PARAMS = ("namespace", "project", "model")


class CacheAdmin:
    def __init__(self, cache: ResponseCache | None, auth: Authenticator) -> None:
        self.cache = cache
        self.auth = auth

    async def route(self, req: Exchange) -> None:
        require_admin(self.auth, req, "The response cache is managed with the admin key only.")
        if req.method == "DELETE":
            params = query_params(req, DELETE_PARAMS)
            selector = Selector(params.get("project") or None, params.get("namespace") or None,
                                params.get("model") or None)
            deleted = await self.cache.delete(selector) if self.cache is not None else 0
            req.json(200, {"object": "cache.deletion", "deleted": deleted,
                           "selector": {k: v for k, v in params.items() if v}})
            return
        query_params(req, ())
        if self.cache is None:
            req.json(200, {"object": "cache.stats", "enabled": False})
            return
        req.json(200, {"object": "cache.stats", "enabled": True, **await self.cache.stats()})
