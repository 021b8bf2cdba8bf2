"""Builds the console once per worker: the static files, the Jinja2 environment and the page handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from interlock.cache.response_cache import ResponseCache
from interlock.catalog import Catalog
from interlock.console.audit import AuditPage
from interlock.console.budgets import BudgetsPage
from interlock.console.cache import CachePage
from interlock.console.csrf import SigninTokens
from interlock.console.guardrails import Check, GuardrailsPage
from interlock.console.keys import KeysPage
from interlock.console.limits import AddressLimiter
from interlock.console.overview import OverviewPage, route_health
from interlock.console.pages import CatalogPages
from interlock.console.playground import Generation, Playground
from interlock.console.policies import Explain, PoliciesPage
from interlock.console.requests import RequestLog, row_view
from interlock.console.sessions import Sessions
from interlock.console.settings import ConsoleSettings
from interlock.console.signin import SignIn
from interlock.console.simulate import RATE, SimulatorBox
from interlock.console.spend import BudgetSource, SpendPage
from interlock.console.tail import LogTail, TailStream
from interlock.console.tools import Overview, ToolsPage
from interlock.console.traffic import RouteTraffic
from interlock.console.views import route_price, vendor_name
from interlock.console.web import StaticFiles, load_static, make_environment
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.exchange import Exchange
from interlock.core.vendor import VendorRuntime
from interlock.governance.audit import AuditLog
from interlock.governance.auth import Authenticator
from interlock.governance.service import Governance
from interlock.governance.store import GovStore
from interlock.guardrails.settings import GuardrailConfig
from interlock.ledger.writer import LogStore
from interlock.routing.replay import PolicyLab
from interlock.routing.stats import LiveStats

SIMULATOR = "simulator"


class Console:
    """The console's handlers; ``Gateway._routes()`` adds one route for each.

    ``chat`` is the playground's pipeline (the gateway's chat path with the session as the caller,
    ``playground.SessionIdentify``); ``generation`` reads a request's routing record for a caller;
    ``log`` is the request log the model page reads its route rollup from (None: the log is off);
    ``policies`` and ``explain`` serve the routing policies page."""

    def __init__(self, settings: ConsoleSettings, catalog: Catalog, vendors: Mapping[str, VendorRuntime],
                 stats: LiveStats, auth: Authenticator, store: GovStore, secret: bytes,
                 chat: Callable[[Exchange], Awaitable[None]], generation: Generation, *,
                 log: LogStore | None = None, clock: Clock = SYSTEM_CLOCK, tools: Overview | None = None,
                 gov: Governance | None = None, guardrails: GuardrailConfig | None = None,
                 cache: ResponseCache | None = None, check: Check | None = None,
                 policies: PolicyLab | None = None, explain: Explain | None = None,
                 circuit: Callable[[str], str] | None = None, budgets: BudgetSource | None = None,
                 docs_url: str | None = None) -> None:
        static = load_static()
        env = make_environment(static, docs_url)
        live = frozenset(vendors)
        simulator = vendors.get(SIMULATOR)
        self.sessions = Sessions(store, auth, settings.session_hours, clock)
        self.pages = CatalogPages(env, catalog, live, stats, None if settings.public_catalog else auth,
                                  RouteTraffic(log) if log is not None else None, self.sessions,
                                  simulator_box=simulator is not None,
                                  regions={vid: v.regions for vid, v in vendors.items()})
        self.signin = SignIn(env, self.sessions, SigninTokens(secret), AddressLimiter(10, 300.0, clock))
        self.playground = Playground(env, self.sessions, chat, generation, catalog, live)
        self.static = StaticFiles(static)
        #: The request log's pages (None store: the log is off, the page says so).
        self.requests = RequestLog(env, self.sessions, log)
        self.requests.price = lambda model, vendor: route_price(catalog, model, vendor)
        #: One poll of the log a second for every live tail this worker streams.
        self.tail = LogTail(log, row_view, clock=clock) if log is not None else None
        self.requests.tail = TailStream(self.sessions, self.tail, clock) if self.tail is not None else None
        #: Routing policies: the configured ones, a dry run (``explain``: ``RoutingApi.explain_for``) and replays.
        self.policies = PoliciesPage(env, self.sessions, policies, explain, log)
        #: The MCP gateway's page (``tools``: its overview, from app.py).
        self.tools = ToolsPage(env, self.sessions, tools, clock)
        #: Overview (rollups and live route health) and Spend (daily rollups, budgets from ``budgets``).
        self.overview = OverviewPage(env, self.sessions, log,
                                     lambda: route_health(stats, circuit or (lambda _key: "closed")), clock)
        self.spend = SpendPage(env, self.sessions, log, budgets, clock)
        self.simulate = SimulatorBox(catalog, simulator.adapter if simulator is not None else None,
                                     lambda vendor: vendor_name(catalog, vendor), self.pages.permits,
                                     AddressLimiter(RATE, 60.0, clock))
        #: Projects and keys, budgets and limits, the audit log (``gov``: the governance service; None in
        #: unit tests that build a console without one, where these pages are not routed).
        self.keys: KeysPage | None = None
        self.budgets: BudgetsPage | None = None
        self.audit: AuditPage | None = None
        #: Guardrails and the response cache (``check``: ``/v1/guardrails/check``'s code; ``cache``: None when off).
        self.guardrails: GuardrailsPage | None = None
        self.cache: CachePage | None = None
        if gov is not None:
            audit = AuditLog(gov.store, clock)
            self.keys = KeysPage(env, self.sessions, gov, secret, audit, log, guardrails, clock)
            self.budgets = BudgetsPage(env, self.sessions, gov, audit, clock)
            self.audit = AuditPage(env, self.sessions, audit)
            self.guardrails = GuardrailsPage(env, self.sessions, gov, guardrails or GuardrailConfig(), log, check,
                                             clock)
            self.cache = CachePage(env, self.sessions, cache, log, audit, gov, clock)
