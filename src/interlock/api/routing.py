"""``POST /v1/route/explain`` and ``GET /v1/generation?id=...``.

Explain runs the real routing decision on a normal chat request - the same
code path a request takes, minus the vendor call - so "what would happen if"
has an exact answer. Generation serves what happened: the request's routing
trace and OpenRouter-compatible accounting, from memory for recent requests
(the log is written in batches) and from the request log after that. A
generation is its project's: another project's id answers 404 exactly as an
unknown one does; the admin key sees every one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from interlock.core.context import RequestContext
from interlock.core.errors import InvalidRequest, NotFound
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.core.tags import parse_tags
from interlock.governance.service import Governance
from interlock.ledger.writer import LogStore
from interlock.observability import zdr_log
from interlock.pipeline.stages import Authenticate
from interlock.routing.engine import RoutingEngine
from interlock.routing.explain import explain, generation
from interlock.wire.openai_chat import parse_json_object, validate_chat_request


class RoutingApi:
    def __init__(self, auth: Authenticate, routing: RoutingEngine, governance: Governance, log_store: LogStore,
                 max_body: int) -> None:
        self.auth = auth
        self.routing = routing
        self.governance = governance
        self.log_store = log_store
        self.max_body = max_body

    async def explain(self, req: Exchange) -> None:
        principal = self.auth.authenticate(req.header("authorization"), req.header("x-api-key"),
                                           req.header("x-interlock-project"))
        zdr_log.mark(principal.zero_data_retention)
        request = parse_json_object(await req.body(self.max_body))
        req.json(200, self.explain_for(principal, request, parse_tags(req.header("x-interlock-tags")), exchange=req))

    def explain_for(self, principal: Principal, request: dict[str, Any], tags: tuple[str, ...] = (),
                    input_tokens: int | None = None, exchange: Exchange | None = None) -> dict[str, Any]:
        """The explanation of ``request`` for ``principal`` (also the console's dry run); raises a GatewayError.

        ``input_tokens`` replaces the prompt's count (the console re-plans a recorded request by its usage).
        """
        validate_chat_request(request)
        ctx = RequestContext("explain")
        ctx.principal, ctx.exchange = principal, exchange
        trace, plan = self.routing.decide(request, exact=True, project=principal.project, input_tokens=input_tokens,
                                          regions=self.routing.region_rules(ctx, request),
                                          header=exchange.header if exchange is not None else None)
        # What admit would do to this caller's route (targets without a price under a hard budget).
        ctx.requested_model, ctx.routing, ctx.plan = request["model"], trace, plan
        ctx.tags = tags
        user = request.get("user")
        ctx.end_user = user[:256] if isinstance(user, str) else None
        self.governance.explain(ctx, request)
        return explain(trace)

    async def generation(self, req: Exchange) -> None:
        principal = self.auth.authenticate(req.header("authorization"), req.header("x-api-key"),
                                           req.header("x-interlock-project"))
        query = dict(parse_qsl(req.query, keep_blank_values=True))
        rid = query.get("id", "").strip()
        if not rid:
            raise InvalidRequest("Missing required query parameter: 'id' (the request id, x-interlock-request-id).",
                                 param="id", code="missing_required_parameter")
        req.json(200, {"data": await self.generation_for(principal, rid)})

    async def generation_for(self, principal: Principal, rid: str) -> dict[str, Any]:
        """The generation record of request ``rid`` as ``principal`` may see it (404 for another project's)."""
        row = self.routing.traces.get(rid)
        if row is None:
            row = await self.log_store.get(rid)
        if row is not None and not principal.admin and (principal.project is None
                                                         or row.get("project") != principal.project):
            row = None  # another project's request: indistinguishable from an unknown id
        if row is None:
            raise NotFound(f"No generation with id '{rid[:100]}' (it may not be written to the request log yet, or "
                           "logging is disabled).")
        return generation(row)

