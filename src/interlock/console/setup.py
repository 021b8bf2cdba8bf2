"""Builds the console once per worker: the static files, the Jinja2 environment and the page handlers."""

from __future__ import annotations

from collections.abc import Mapping

from interlock.catalog import Catalog
from interlock.console.pages import CatalogPages
from interlock.console.settings import ConsoleSettings
from interlock.console.simulate import SimulatorBox
from interlock.console.traffic import RouteTraffic
from interlock.console.views import vendor_name
from interlock.console.web import StaticFiles, load_static, make_environment
from interlock.core.exchange import Exchange
from interlock.core.vendor import VendorRuntime
from interlock.ledger.writer import LogStore
from interlock.pipeline.stages import Authenticate
from interlock.routing.stats import LiveStats

SIMULATOR = "simulator"


class Console:
    """The console's handlers; ``Gateway._routes()`` adds one route for each."""

    def __init__(self, settings: ConsoleSettings, catalog: Catalog, vendors: Mapping[str, VendorRuntime],
                 stats: LiveStats, auth: Authenticate, log: LogStore | None = None) -> None:
        static = load_static()
        env = make_environment(static)
        simulator = vendors.get(SIMULATOR)
        traffic = RouteTraffic(log) if log is not None else None
        self.pages = CatalogPages(env, catalog, vendors, stats, None if settings.public_catalog else auth, traffic,
                                  simulator_box=simulator is not None)
        self.static = StaticFiles(static)

        async def gate(req: Exchange) -> bool:
            return self.pages.allowed(req)

        self.simulate = SimulatorBox(catalog, simulator.adapter if simulator is not None else None,
                                     lambda vendor: vendor_name(catalog, vendor), gate)
