"""``GET`` and ``DELETE /v1/responses/{id}`` (and ``GET .../input_items``): stored Responses API state.

``POST /v1/responses`` runs on the pipeline with the Responses codec; this
module owns the store it writes to (SQLite, or PostgreSQL with ``store:``) and
the two read/delete endpoints, which answer from the store without a vendor
call, in OpenAI's shapes. Both are scoped to the caller's project: another
project's response answers exactly as an unknown id does (404, same message),
and a DELETE of it deletes nothing. The admin key sees every response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from interlock.errors import NotFound
from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.responses_store import Owner, PostgresResponses, ResponsesStore, SQLiteResponses
from interlock.server.http import Request
from interlock.wire.responses import ResponsesCodec

if TYPE_CHECKING:
    from interlock.app import Gateway

_PREFIX = "/v1/responses/"


class ResponsesApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        log_store = gateway.obs.store
        self.store: ResponsesStore = (PostgresResponses(log_store) if isinstance(log_store, PostgresLog)
                                      else SQLiteResponses(gateway.store.path))
        self.codec = ResponsesCodec(self.store)

    def _target(self, req: Request) -> tuple[str, str, Owner]:
        principal = self.gw.auth.authenticate(req.header("authorization"), req.header("x-api-key"),
                                              req.header("x-interlock-project"))
        rest = req.path[len(_PREFIX):].strip("/")
        response_id, _, sub = rest.partition("/")
        if not response_id:
            raise NotFound("Name a response: /v1/responses/{response_id}.", param="response_id")
        return response_id, sub, Owner.of(principal)

    @staticmethod
    def _missing(response_id: str) -> NotFound:
        return NotFound(f"Response with id '{response_id}' not found.", param="response_id")

    async def item(self, req: Request) -> None:
        """GET returns the stored response (or its input items); DELETE forgets it."""
        response_id, sub, owner = self._target(req)
        if req.scope.method == "DELETE":
            if sub or not await self.store.delete(response_id, owner):
                raise self._missing(response_id)
            req.json(200, {"id": response_id, "object": "response.deleted", "deleted": True})
            return
        found = await self.store.get(response_id, owner)
        if found is None:
            raise self._missing(response_id)
        if not sub:
            req.json(200, found.response)
        elif sub == "input_items":
            items = [{"id": f"in_{response_id[5:]}{i:04x}", **item} if isinstance(item, dict) else item
                     for i, item in enumerate(found.input_items)]
            if dict(parse_qsl(req.scope.query_string)).get("order", "desc") == "desc":
                items.reverse()  # OpenAI lists input items newest first unless asked otherwise
            req.json(200, {"object": "list", "data": items,
                           "first_id": items[0]["id"] if items else None,
                           "last_id": items[-1]["id"] if items else None, "has_more": False})
        else:
            raise NotFound(f"Unknown request URL: {req.path}.")
