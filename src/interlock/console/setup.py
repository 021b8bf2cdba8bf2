"""Builds the console once per worker: the static files, the Jinja2 environment and the page handlers."""

from __future__ import annotations

from collections.abc import Iterable

from interlock.catalog import Catalog
from interlock.console.pages import CatalogPages
from interlock.console.settings import ConsoleSettings
from interlock.console.traffic import RouteTraffic
from interlock.console.web import StaticFiles, load_static, make_environment
from interlock.ledger.writer import LogStore
from interlock.pipeline.stages import Authenticate
from interlock.routing.stats import LiveStats


class Console:
    """The console's handlers; ``Gateway._routes()`` adds one route for each."""

    def __init__(self, settings: ConsoleSettings, catalog: Catalog, live: Iterable[str], stats: LiveStats,
                 auth: Authenticate, log: LogStore | None = None) -> None:
        static = load_static()
        env = make_environment(static)
        traffic = RouteTraffic(log) if log is not None else None
        self.pages = CatalogPages(env, catalog, live, stats, None if settings.public_catalog else auth, traffic)
        self.static = StaticFiles(static)
