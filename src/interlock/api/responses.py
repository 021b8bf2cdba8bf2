"""``GET`` and ``DELETE /v1/responses/{id}`` (and ``GET .../input_items``): stored Responses API state.

``POST /v1/responses`` runs on the pipeline with the Responses codec; this
module owns the store it writes to (SQLite, or PostgreSQL with ``store:``) and
the two read/delete endpoints, which answer from the store without a vendor
call, in OpenAI's shapes. Both are scoped to the caller's project: another
project's response answers exactly as an unknown id does (404, same message),
and a DELETE of it deletes nothing. The admin key sees every response.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from interlock.core.errors import NotFound
from interlock.core.exchange import Exchange
from interlock.core.responses import Owner
from interlock.ledger.responses_store import ResponsesStore
from interlock.pipeline.stages import Authenticate
from interlock.wire.responses import ResponsesCodec

_PREFIX = "/v1/responses/"


def _parts(content: Any, assistant: bool) -> Any:
    """Message content as the list of typed parts the item list carries (a string is one text part)."""
    if isinstance(content, str):
        content = [{"type": "output_text" if assistant else "input_text", "text": content}]
    if not isinstance(content, list):
        return content
    out = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "output_text":
            part = {"annotations": [], "logprobs": [], **part}  # both required in OutputTextContent
        out.append(part)
    return out


def input_item_resource(item: Any, iid: str) -> Any:
    """A stored input item in the shape ``ResponseItemList`` lists: typed, with an id and a status.

    The store keeps the items as the caller sent them (``{"role", "content": "text"}`` is
    an easy input message); the list answers each as its item resource: a ``message``
    with typed content parts, and every item with the ``id`` and ``status`` the spec requires.
    """
    if not isinstance(item, dict):
        return item
    kind = item.get("type", "message" if "role" in item else None)
    out: dict[str, Any] = {"id": iid, **item}
    if kind == "message":
        out["type"] = "message"
        out["content"] = _parts(item.get("content"), item.get("role") == "assistant")
        out.setdefault("status", "completed")
    elif kind in ("function_call", "function_call_output"):
        out.setdefault("status", "completed")
    elif kind == "reasoning":
        out.setdefault("summary", [])
    return out


class ResponsesApi:
    """``GET``/``DELETE /v1/responses/{id}``; ``POST /v1/responses`` is the pipeline with :attr:`codec`."""

    def __init__(self, auth: Authenticate, store: ResponsesStore) -> None:
        self.auth = auth
        self.store = store
        self.codec = ResponsesCodec(store)

    def _target(self, req: Exchange) -> tuple[str, str, Owner]:
        principal = self.auth.authenticate(req.header("authorization"), req.header("x-api-key"),
                                           req.header("x-interlock-project"))
        rest = req.path[len(_PREFIX):].strip("/")
        response_id, _, sub = rest.partition("/")
        if not response_id:
            raise NotFound("Name a response: /v1/responses/{response_id}.", param="response_id")
        return response_id, sub, Owner.of(principal)

    @staticmethod
    def _missing(response_id: str) -> NotFound:
        return NotFound(f"Response with id '{response_id}' not found.", param="response_id")

    async def item(self, req: Exchange) -> None:
        """GET returns the stored response (or its input items); DELETE forgets it."""
        response_id, sub, owner = self._target(req)
        if req.method == "DELETE":
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
            items = [input_item_resource(item, f"in_{response_id[5:]}{i:04x}")
                     for i, item in enumerate(found.input_items)]
            if dict(parse_qsl(req.query)).get("order", "desc") == "desc":
                items.reverse()  # OpenAI lists input items newest first unless asked otherwise
            req.json(200, {"object": "list", "data": items,
                           "first_id": items[0]["id"] if items else None,
                           "last_id": items[-1]["id"] if items else None, "has_more": False})
        else:
            raise NotFound(f"Unknown request URL: {req.path}.")
