"""``GET /v1/models``, ``GET /v1/models/{lab}/{model}`` and ``.../endpoints``.

The OpenAI list shape, enriched with OpenRouter's fields (pricing, context
length, modalities, supported parameters) so clients written for either work.
Rendering lives with the catalog; this module only parses the URL and query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from interlock.catalog.render import model_detail, model_endpoints, model_list
from interlock.core.errors import ModelNotFound
from interlock.server.http import Request

if TYPE_CHECKING:
    from interlock.app import Gateway

_PREFIX = "/v1/models/"


class ModelsApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self._live = frozenset(gateway.vendors)
        self._list_cache: bytes | None = None

    async def list(self, req: Request) -> None:
        self.gw.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        query: dict[str, str] = {}
        for key, value in parse_qsl(req.scope.query_string, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        req.json(200, model_list(self.gw.catalog, self._live, query))

    async def detail(self, req: Request) -> None:
        self.gw.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        # SDKs percent-encode the id as one path segment (openai%2Fgpt-4.1-mini): decode it.
        rest = unquote(req.path[len(_PREFIX):]).strip("/")
        catalog = self.gw.catalog
        if rest.endswith("/endpoints") and catalog.get(rest) is None:
            model_id = rest[: -len("/endpoints")]
            req.json(200, model_endpoints(catalog, model_id, self._live, self.gw.routing.stats.endpoint_stats()))
            return
        if not rest:
            raise ModelNotFound("Name a model: /v1/models/{lab}/{model}.", param="model")
        req.json(200, model_detail(catalog, rest, self._live))
