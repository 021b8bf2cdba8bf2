"""Builds the console once per worker: the static files, the Jinja2 environment and the page handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from interlock.catalog import Catalog
from interlock.console.csrf import SigninTokens
from interlock.console.pages import CatalogPages
from interlock.console.playground import Generation, Playground
from interlock.console.sessions import Sessions
from interlock.console.settings import ConsoleSettings
from interlock.console.signin import FailureLimiter, SignIn
from interlock.console.web import StaticFiles, load_static, make_environment
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.exchange import Exchange
from interlock.governance.auth import Authenticator
from interlock.governance.store import GovStore
from interlock.routing.stats import LiveStats


class Console:
    """The console's handlers; ``Gateway._routes()`` adds one route for each.

    ``chat`` is the playground's pipeline (the gateway's chat path with the session as the caller,
    ``playground.SessionIdentify``); ``generation`` reads a request's routing record for a caller."""

    def __init__(self, settings: ConsoleSettings, catalog: Catalog, live: Collection[str], stats: LiveStats,
                 auth: Authenticator, store: GovStore, secret: bytes,
                 chat: Callable[[Exchange], Awaitable[None]], generation: Generation,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        static = load_static()
        env = make_environment(static)
        self.sessions = Sessions(store, auth, settings.session_hours, clock)
        self.pages = CatalogPages(env, catalog, live, stats, None if settings.public_catalog else auth,
                                  self.sessions)
        self.signin = SignIn(env, self.sessions, SigninTokens(secret), FailureLimiter(clock=clock))
        self.playground = Playground(env, self.sessions, chat, generation, catalog, live)
        self.static = StaticFiles(static)
