"""The catalog pages: ``GET /models`` (the index), ``GET /models/{lab}/{model}`` and ``GET /compare``.

Each handler reads the catalog (in memory) and a snapshot of the live stats
(``routing.stats``, cached per second); the model page also reads its model's
hourly route rollup (``console.traffic``: one small query off the event loop,
cached per model for 30 s).
Unknown models and refused requests are answered as HTML pages too, with the
same security headers (:func:`interlock.console.web.send_page`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote

from jinja2 import Environment

from interlock.catalog import Catalog
from interlock.console.pairing import facts, pairings
from interlock.console.sessions import Sessions, over_tls
from interlock.console.signin import safe_next, signin_url, viewer
from interlock.console.traffic import RouteTraffic, merge_view
from interlock.console.views import SORTS, Filters, Index, compare_view, model_view
from interlock.console.web import redirect, send_large_page, send_page
from interlock.core.errors import GatewayError
from interlock.core.exchange import Exchange
from interlock.pipeline.stages import Authenticate
from interlock.routing.stats import LiveStats

_PREFIX = "/models/"
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def base_url(req: Exchange) -> str:
    """This gateway's URL as the browser reached it, for the code samples (a malformed Host is not echoed)."""
    host = req.header("host") or ""
    if not _HOST.fullmatch(host):
        host = "localhost"
    scheme = "https" if over_tls(req) else "http"
    return f"{scheme}://{host}"


def _query(raw: str) -> dict[str, str]:
    return dict(parse_qsl(raw, keep_blank_values=True))


class CatalogPages:
    """The catalog pages; ``auth`` is set when ``console.public_catalog`` is false (sign-in required)."""

    def __init__(self, env: Environment, catalog: Catalog, live: Iterable[str], stats: LiveStats,
                 auth: Authenticate | None = None, traffic: RouteTraffic | None = None,
                 sessions: Sessions | None = None, *, simulator_box: bool = False,
                 regions: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.env = env
        #: The request log's route rollup (None: the log is off).
        self.traffic = traffic
        self.catalog = catalog
        self.stats = stats
        self.auth = auth
        self.sessions = sessions
        self._live = frozenset(live)
        #: Where each live vendor instance runs (data residency), shown per route on the model page.
        self._regions = regions or {}
        #: The model page shows "Test with the simulator" (the simulator is enabled here).
        self.simulator_box = simulator_box
        self._index = Index(catalog)
        #: Pairings and facts per model: they depend only on the catalog and the live vendors, both fixed.
        self._insights: dict[str, dict[str, Any]] = {}

    async def visitor(self, req: Exchange) -> dict[str, Any] | None:
        """The header's sign-in values, or None when the page was refused (a private catalog, no sign-in).

        A browser without a session goes to the sign-in page (303, returning here); an API client
        with an Authorization header is checked as the API checks it."""
        session = await self.sessions.resolve(req) if self.sessions is not None else None
        if self.auth is None or session is not None:
            return viewer(session)
        if req.header("authorization") is None and req.header("x-api-key") is None:
            redirect(req, signin_url(safe_next(req.path + (f"?{req.query}" if req.query else ""))))
            return None
        try:
            self.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        except GatewayError as err:
            self.error(req, err.status, "Sign-in required",
                       "This gateway's catalog is private (console.public_catalog: false). "
                       "Sign in, or send an interlock key in the Authorization header.")
            return None
        return viewer(None)

    async def permits(self, req: Exchange) -> bool:
        """For the console's JSON endpoints: a session, or a key when the catalog is private (nothing sent)."""
        if self.auth is None or (self.sessions is not None and await self.sessions.resolve(req) is not None):
            return True
        try:
            self.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        except GatewayError:
            return False
        return True

    def error(self, req: Exchange, status: int, title: str, message: str) -> None:
        send_page(req, self.env, status, "error.html", {"title": title, "message": message, "active": ""})

    async def index(self, req: Exchange) -> None:
        if (who := await self.visitor(req)) is None:
            return
        query = _query(req.query)
        if query.get("sort", "lab") not in SORTS:
            self.error(req, 400, "Unknown sort order", f"'sort' must be one of: {', '.join(SORTS)}.")
            return
        filters = Filters.from_query(query)
        view = self._index.view(self._live, self.stats.endpoint_stats(), filters)
        await send_large_page(req, self.env, 200, "models.html", {**view, **who, "active": "models"})

    async def model(self, req: Exchange) -> None:
        if (who := await self.visitor(req)) is None:
            return
        model_id = unquote(req.path[len(_PREFIX):]).strip("/")
        model = self.catalog.get(model_id) if model_id else None
        if model is None:
            self.error(req, 404, "Model not found",
                       f"There is no model {model_id!r} in this gateway's catalog." if model_id
                       else "Name a model: /models/{lab}/{model}.")
            return
        view: dict[str, Any] = model_view(self.catalog, model, self._live, self.stats.endpoint_stats(),
                                          base_url(req), self._regions)
        hours = await self.traffic.hours(model.id) if self.traffic is not None else None
        view = merge_view(view, hours, log_enabled=self.traffic is not None)
        insights = self._insights.get(model.id)
        if insights is None:
            insights = self._insights[model.id] = {"pairings": pairings(self.catalog, model, self._live),
                                                   "facts": facts(self.catalog, model, self._live)}
        view.update(insights)
        send_page(req, self.env, 200, "model.html", {**view, **who, "active": "models", "simulator_box": self.simulator_box})

    async def compare(self, req: Exchange) -> None:
        if (who := await self.visitor(req)) is None:
            return
        ids = [v.strip() for v in parse_qs(req.query).get("m", []) if v.strip()]
        view = compare_view(self.catalog, ids, self._live, self.stats.endpoint_stats())
        # More than four models is the caller's mistake: the page says so (naming 'm') and answers 400.
        send_page(req, self.env, 400 if view["too_many"] else 200, "compare.html", {**view, **who, "active": "compare"})
