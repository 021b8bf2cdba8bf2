"""``GET /v1/models``, ``GET /v1/models/{lab}/{model}`` and ``.../endpoints``.

The OpenAI list shape, enriched with OpenRouter's fields (pricing, context
length, modalities, supported parameters) so clients written for either work.
Rendering lives with the catalog; this module only parses the URL and query.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote

from interlock.catalog import Catalog
from interlock.catalog.render import model_detail, model_endpoints, model_list
from interlock.core.errors import ModelNotFound
from interlock.core.exchange import Exchange
from interlock.pipeline.stages import Authenticate
from interlock.routing.stats import LiveStats

_PREFIX = "/v1/models/"


class ModelsApi:
    def __init__(self, auth: Authenticate, catalog: Catalog, live: Iterable[str], stats: LiveStats) -> None:
        self.auth = auth
        self.catalog = catalog
        self.stats = stats
        self._live = frozenset(live)
        self._list_cache: bytes | None = None

    async def list(self, req: Exchange) -> None:
        self.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        query: dict[str, str] = {}
        for key, value in parse_qsl(req.query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        req.json(200, model_list(self.catalog, self._live, query))

    async def detail(self, req: Exchange) -> None:
        self.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        # SDKs percent-encode the id as one path segment (openai%2Fgpt-4.1-mini): decode it.
        rest = unquote(req.path[len(_PREFIX):]).strip("/")
        catalog = self.catalog
        if rest.endswith("/endpoints") and catalog.get(rest) is None:
            model_id = rest[: -len("/endpoints")]
            req.json(200, model_endpoints(catalog, model_id, self._live, self.stats.endpoint_stats()))
            return
        if not rest:
            raise ModelNotFound("Name a model: /v1/models/{lab}/{model}.", param="model")
        req.json(200, model_detail(catalog, rest, self._live))
