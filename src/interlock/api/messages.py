"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's routes.

``/v1/messages`` is the pipeline with the Anthropic codec (``app.py``); its errors
carry the request's id as ``request_id``, stamped by ``RequestContext.fail``.

``count_tokens`` answers without a vendor call. The body is a Messages request
without ``max_tokens``; it is translated like ``/v1/messages`` (so the same 400s
name the same fields) and counted with the catalog's tokenizer for the model it
resolves to. The count is the gateway's estimate of the whole prompt - what the
vendor would bill as input before any caching. It answers exactly
``MessageTokensCount`` (``{"input_tokens": n}``).
"""

from __future__ import annotations

from interlock.catalog import estimate_chat_tokens
from interlock.core.context import new_request_id
from interlock.core.errors import GatewayError
from interlock.core.exchange import Exchange
from interlock.observability import zdr_log
from interlock.pipeline.stages import Authenticate
from interlock.routing.planner import Planner
from interlock.wire.anthropic_messages import error_body, parse_messages_request
from interlock.wire.openai_chat import parse_json_object


class MessagesApi:
    def __init__(self, auth: Authenticate, planner: Planner, max_body: int) -> None:
        self.auth = auth
        self.planner = planner
        self.max_body = max_body

    async def count_tokens(self, req: Exchange) -> None:
        request_id = new_request_id()
        headers = [("x-interlock-request-id", request_id)]
        try:
            input_tokens = await self._count(req)
        except GatewayError as err:
            req.send(err.status, error_body(err, request_id),
                     [("content-type", "application/json"), *headers, *err.headers.items()])
            return
        req.json(200, {"input_tokens": input_tokens}, headers)

    async def _count(self, req: Exchange) -> int:
        principal = self.auth.authenticate(req.header("authorization"), req.header("x-api-key"),
                                           req.header("x-interlock-project"))
        zdr_log.mark(principal.zero_data_retention)
        body = await req.body(self.max_body)
        request = parse_messages_request(parse_json_object(body), require_max_tokens=False)
        plan = self.planner.plan(request["model"])
        model = plan.targets[0].model if plan.targets else None
        return estimate_chat_tokens(request, model)
