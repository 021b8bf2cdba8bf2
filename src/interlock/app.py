"""Wiring: settings → catalog, state store, ledger, auth, vendors, planner, routes.

:func:`prepare_state` runs once in the launching process (it may create the
state directory and the admin key); :class:`Gateway` is built once per worker
process and is the RSGI application Granian calls.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock.api.admin import AdminApi
from interlock.api.admin_logs import AdminLogs, require_admin
from interlock.api.badge import BadgeApi
from interlock.api.cache import CacheAdmin
from interlock.api.embeddings import EmbeddingsApi
from interlock.api.guardrails import GuardrailsApi
from interlock.api.health import Health
from interlock.api.messages import MessagesApi
from interlock.api.metrics import MetricsApi
from interlock.api.models import ModelsApi
from interlock.api.openapi import OpenApiDocument
from interlock.api.responses import ResponsesApi
from interlock.api.routing import RoutingApi
from interlock.cache.breakpoints import place_breakpoints
from interlock.cache.settings import CacheSettings
from interlock.cache.setup import build_cache
from interlock.catalog import Catalog, load_catalog, warm_tokenizers
from interlock.config import ConfigError, Settings, load_settings
from interlock.console import Console, ConsoleSettings
from interlock.console.docs import DOCS_PREFIX, DocsSite, docs_dir
from interlock.console.playground import SessionIdentify
from interlock.console.spend import budget_source
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.codec import InboundCodec
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, InvalidRequest, MethodNotAllowed, NotFound
from interlock.core.exchange import Exchange
from interlock.core.vendor import VendorRuntime
from interlock.governance.auth import Authenticator, MasterKey, ensure_master_key, server_secret
from interlock.governance.wiring import build_governance, check_store_secret, validate_governance
from interlock.guardrails.guard import Guards
from interlock.guardrails.settings import GuardrailConfig
from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.responses_store import PostgresResponses, ResponsesStore, SQLiteResponses
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.wiring import Observability
from interlock.mcp.setup import McpGateway
from interlock.pipeline.cache import CacheStage
from interlock.pipeline.core import Pipeline
from interlock.pipeline.dispatch import Dispatcher
from interlock.pipeline.guard import GuardStage, off_loop
from interlock.pipeline.settle import Ledger
from interlock.pipeline.stages import (
    AdmitStage,
    AnyStage,
    CaptureStage,
    Identifies,
    Identify,
    InternalErrors,
    Lifecycle,
    RouteStage,
    settlers,
)
from interlock.reload import Reloaded, Reloader
from interlock.routing.replay import PolicyLab
from interlock.routing.setup import build_routing, validate_routing
from interlock.server.http import Request, Router, RSGIProtocol, RSGIScope, refusal_error
from interlock.vendors.registry import VENDOR_TABLE, build_vendors
from interlock.vendors.transport import HttpTransport, Transport
from interlock.wire import anthropic_messages
from interlock.wire.openai_chat import OpenAIChatCodec, error_body

log = logging.getLogger("interlock")


@dataclass(frozen=True, slots=True)
class State:
    store: SQLiteStore
    secret: bytes
    master: MasterKey


def prepare_state(settings: Settings, environ: Mapping[str, str] | None = None) -> State:
    env = os.environ if environ is None else environ
    state_dir = settings.server.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(state_dir / "interlock.db")
    secret = server_secret(state_dir, env)
    return State(store, secret, ensure_master_key(store, secret, env))


def validate(settings: Settings) -> None:
    """Build every subsystem's own settings once, in the launching process.

    Sections validated by their subsystem (``catalog:``, ``simulator:``) fail the
    start here with a :class:`ConfigError`, instead of failing inside a worker.
    """
    catalog = build_catalog(settings)
    build_simulator(settings, catalog)
    Observability.validate(settings)
    validate_routing(settings, catalog)
    validate_governance(settings)
    check_store_secret(settings, os.environ)
    ConsoleSettings.from_settings(settings)
    GuardrailConfig.from_settings(settings)
    CacheSettings.from_settings(settings)
    McpGateway.validate(settings)


def build_catalog(settings: Settings) -> Catalog:
    catalog = load_catalog()
    if settings.catalog:
        try:
            catalog = catalog.with_overrides(dict(settings.catalog))
        except ValueError as exc:
            raise ConfigError(f"{settings.source}: {exc}") from None
    return catalog


def build_simulator(settings: Settings, catalog: Catalog) -> Transport | None:
    if not settings.simulator_enabled:
        return None
    # Imported here: loaded only when the simulator is enabled.
    from interlock.simulator.settings import SimulatorSettings
    from interlock.simulator.transport import SimulatorTransport

    try:
        sim_settings = SimulatorSettings.from_config(dict(settings.simulator))
    except ValueError as exc:
        raise ConfigError(f"{settings.source or '(defaults)'}: {exc}") from None
    return SimulatorTransport(sim_settings, catalog)


class Gateway:
    """The RSGI application of one worker process."""

    def __init__(self, settings: Settings, state: State | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        #: Wall time, monotonic time and sleep for every component that counts in time (tests pass a fake one).
        self.clock = clock
        state = state or prepare_state(settings)
        self.store = state.store
        self.catalog = build_catalog(settings)
        # Build the tokenizer now, not on the first request (loading its rank table takes a while).
        warm_tokenizers()
        #: The guardrails floor and the config's per-project entries (guardrails/settings.py).
        self.guardrails = GuardrailConfig.from_settings(settings)
        self.auth = Authenticator(state.secret, state.master, clock=clock, guardrails=self.guardrails)
        self.http = HttpTransport()
        #: Projects, keys, budgets and rate limits (governance/); loads the definitions now.
        self.governance = build_governance(settings, self.auth, self.http, clock)
        self.secret = state.secret
        self.simulator = build_simulator(settings, self.catalog)
        #: The live vendors: one table every holder shares, updated in place by a config reload.
        self.vendors: dict[str, VendorRuntime] = dict(build_vendors(settings, self.http, self.simulator))
        #: Policies, strategies, circuit breakers, live stats and traces (routing/).
        self.routing = build_routing(settings, self.catalog, self.vendors, clock)
        self.planner = self.routing.planner
        self.dispatcher = Dispatcher(self.routing, sleep=clock.sleep)
        #: Request log, metrics and traces (ledger/wiring.py).
        self.obs = Observability(settings, self.store, clock)
        if self.governance.propagation is not None:
            self.obs.registry.collector(self.governance.propagation.collect)
        if self.governance.redis is not None:
            self.obs.registry.collector(self.governance.redis.collect)
        self.ledger: Ledger = self.obs.sink
        self.identify = Identify(self.auth, self.obs.log_settings.zero_data_retention)
        #: DLP and prompt-injection detectors (guardrails/): one guard per distinct effective settings.
        self.guards = Guards(self.guardrails.floor)
        self.guardrail_count = self.obs.registry.counter(
            "interlock_guardrail_detections_total",
            "Guardrail detections, by detector, action (monitor, redact, block, unchecked, unavailable) and "
            "direction (input: the request; output: the answer).",
            ("detector", "action", "direction"))
        #: Requests that ended in an exception nothing answered (a bug), by route.
        self.internal_error_count = internal = self.obs.registry.counter(
            "interlock_internal_errors_total", "Requests that ended in an internal error (a bug), by route.",
            ("route",))
        self.internal_errors = InternalErrors(lambda label: internal.inc((label,)), self._route_label)
        self.lifecycle = Lifecycle(settlers(self.routing, self.governance, self.ledger), self.internal_errors)
        #: The response cache (cache/), exact and semantic (its embeddings on the guardrails' threads); None when
        #: no request can use it.
        self.cache_settings = CacheSettings.from_settings(settings)
        self.cache = build_cache(self.cache_settings, settings, clock, self.obs.registry, off_loop)
        #: The MCP gateway (mcp/): tool packs for registered users, and /v1/responses' mcp tools.
        self.mcp = McpGateway(settings, self.auth, self.governance, self.obs, self.guards, state.secret,
                              self._count_guardrail, clock)
        #: SIGHUP and POST /admin/v1/reload: vendors, aliases and policies from the config file again.
        Request.trusted_proxies = settings.server.trusted_proxies  # X-Forwarded-For from these only
        self.reloader = Reloader(settings, Path(settings.source) if settings.document is not None and settings.source
                                 else None, self.routing, self.vendors, self.http, self.simulator,
                                 settings.server.workers, validate, self.guardrails, self.guards,
                                 lambda: self.auth.load(self.governance.defs))
        self._reloads: set[asyncio.Task[None]] = set()
        self.router = self._routes()

    def _route_label(self, path: str) -> str:
        route = self.router.match(path)
        return route.label if route is not None else "unmatched"

    def stages(self) -> tuple[AnyStage, ...]:
        """The stages between parse and dispatch, in order: the one place to add one (guardrails, cache)."""
        core: tuple[AnyStage, ...] = (RouteStage(self.routing), AdmitStage(self.governance), CaptureStage(self.ledger))
        # Guardrails first: a blocked request reserves no budget and its content is never captured.
        # The cache last: its key needs the resolved route, and a hit counts toward limits like any request.
        cache: tuple[AnyStage, ...] = ()
        if self.cache is not None or self.cache_settings.anthropic_auto_breakpoints:
            cache = (CacheStage(self.cache, place_breakpoints if self.cache_settings.anthropic_auto_breakpoints
                                else None),)
        return (self.guard_stage(), *core, *cache)

    def guard_stage(self) -> GuardStage:
        """The guardrails stage: always there, since a project may turn a detector on at run time (admin API);
        with nothing on for the caller's project it returns at once."""
        return GuardStage(self.guards, self._count_guardrail)

    def _count_guardrail(self, detector: str, action: str, direction: str) -> None:
        self.guardrail_count.inc((detector, action, direction))

    def pipeline(self, codec: InboundCodec, identify: Identifies | None = None) -> Pipeline:
        """The request path for ``codec``; ``identify`` replaces the Authorization header's (console sessions)."""
        return Pipeline(codec, self.lifecycle, identify or self.identify, self.stages(), self.dispatcher,
                        self.ledger, self.settings.server.max_body_bytes)

    def responses_store(self) -> ResponsesStore:
        """Stored Responses live beside the request log: in PostgreSQL when the log is there, else in SQLite."""
        log_store = self.obs.store
        return (PostgresResponses(log_store) if isinstance(log_store, PostgresLog)
                else SQLiteResponses(self.store.path))

    def health(self) -> Health:
        probes: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("state_store", lambda: asyncio.to_thread(self.store.ping))]
        log_store = self.obs.store
        if not isinstance(log_store, SQLiteLog):  # the SQLite log lives in the state store probed above
            probes.append(("log_store", log_store.ping))
        redis = self.governance.redis
        if redis is not None:
            probes.append(("counters", redis.ping))
        return Health(probes, redis is None, self.vendors)

    def _routes(self) -> Router:
        router = Router()
        openai_errors = error_body
        max_body = self.settings.server.max_body_bytes
        health = self.health_api = self.health()
        models = ModelsApi(self.auth, self.catalog, self.vendors, self.routing.stats)
        router.add("/v1/chat/completions", ("POST",), self.pipeline(OpenAIChatCodec()), openai_errors)
        anthropic_errors = anthropic_messages.error_body
        responses = ResponsesApi(self.auth, self.responses_store())
        router.add("/v1/messages", ("POST",), self.pipeline(anthropic_messages.AnthropicMessagesCodec()),
                   anthropic_errors)
        router.add("/v1/messages/count_tokens", ("POST",), MessagesApi(self.auth, self.planner, max_body).count_tokens,
                   anthropic_errors)
        router.add("/v1/responses", ("POST",), self.mcp.responses(self.pipeline(responses.codec)), openai_errors)
        router.add("/v1/responses/*", ("GET", "DELETE"), responses.item, openai_errors)
        router.add("/v1/embeddings", ("POST",), EmbeddingsApi(self.lifecycle, self.identify, self.planner,
                                                              self.governance, self.dispatcher, self.ledger, max_body,
                                                              self.guard_stage(), self.cache),
                   openai_errors)
        router.add("/v1/models", ("GET",), models.list, openai_errors)
        router.add("/v1/models/*", ("GET",), models.detail, openai_errors)
        private = None if ConsoleSettings.from_settings(self.settings).public_catalog else self.auth
        router.add("/embed/*", ("GET", "HEAD"), BadgeApi(self.catalog, self.vendors, self.routing.stats, private).svg,
                   openai_errors)
        routing_api = RoutingApi(self.auth, self.routing, self.governance, self.obs.store, max_body)
        router.add("/v1/route/explain", ("POST",), routing_api.explain, openai_errors)
        router.add("/v1/generation", ("GET",), routing_api.generation, openai_errors)
        guardrails_api = GuardrailsApi(self.auth, self.guards, max_body)
        router.add("/v1/guardrails/check", ("POST",), guardrails_api.check, openai_errors)
        router.add("/v1/openapi.json", ("GET",), OpenApiDocument(), openai_errors)
        router.add("/healthz", ("GET", "HEAD"), health.live, openai_errors)
        router.add("/readyz", ("GET", "HEAD"), health.ready, openai_errors)
        admin_logs = AdminLogs(self.obs.store, self.auth, self.settings.vendor_regions())
        router.add("/admin/v1/logs", ("GET",), admin_logs.list, openai_errors)
        router.add("/admin/v1/logs/*", ("GET",), admin_logs.detail, openai_errors)
        router.add("/admin/v1/spend", ("GET",), admin_logs.spend, openai_errors)
        if self.obs.telemetry.metrics:
            router.add("/metrics", ("GET",), MetricsApi(self.obs.registry, self.obs.snapshots).scrape, openai_errors)
        AdminApi(self.governance, self.secret, self.guardrails, self.settings.regions).add_routes(router)
        router.add("/admin/v1/reload", ("POST",), self.reload_route, openai_errors)
        router.add("/admin/v1/cache", ("GET", "DELETE"), CacheAdmin(self.cache, self.auth).route, openai_errors)
        self.mcp.add_routes(router)
        # The built docs site (make docs), public like the catalog pages: only when it was built.
        docs_root = docs_dir(self.settings.environ)
        docs = DocsSite(docs_root) if docs_root is not None else None
        if docs is not None:
            router.add(DOCS_PREFIX[:-1], ("GET", "HEAD"), docs, openai_errors)
            router.add(DOCS_PREFIX + "*", ("GET", "HEAD"), docs, openai_errors)
        console_settings = ConsoleSettings.from_settings(self.settings)
        if console_settings.enabled:
            # The playground's chat is this gateway's chat path with the session as the caller.
            chat = self.pipeline(OpenAIChatCodec(),
                                 SessionIdentify(self.identify))
            console = Console(console_settings, self.catalog, self.vendors, self.routing.stats,
                              self.auth, self.governance.store, self.secret, chat, routing_api.generation_for,
                              log=self.obs.store if self.obs.writer is not None else None, clock=self.clock,
                              tools=self.mcp.overview, gov=self.governance, guardrails=self.guardrails,
                              cache=self.cache, check=guardrails_api.verdict,
                              policies=PolicyLab(self.routing, self.catalog, self.settings),
                              explain=routing_api.explain_for,
                              circuit=self.routing.circuits.state,
                              budgets=budget_source(lambda: self.governance.defs.budgets.values(),
                                                    self.governance.budget_status),
                              docs_url=DOCS_PREFIX if docs is not None else None)
            console.spend.regions = self.settings.vendor_regions()
            if console.keys is not None:
                console.keys.regions = self.settings.regions
            router.add("/console/signin", ("GET", "HEAD", "POST"), console.signin.route, openai_errors)
            router.add("/console/signout", ("POST",), console.signin.signout, openai_errors)
            router.add("/console/playground", ("GET", "HEAD"), console.playground.page, openai_errors)
            router.add("/console/api/chat", ("POST",), console.playground.chat, openai_errors)
            router.add("/console/api/generation", ("GET",), console.playground.generation, openai_errors)
            router.add("/console/requests", ("GET", "HEAD"), console.requests.route, openai_errors)
            router.add("/console/requests/*", ("GET", "HEAD"), console.requests.route, openai_errors)
            router.add("/console/overview", ("GET", "HEAD"), console.overview.page, openai_errors)
            router.add("/console/spend", ("GET", "HEAD"), console.spend.route, openai_errors)
            router.add("/console/spend/*", ("GET", "HEAD"), console.spend.route, openai_errors)
            router.add("/console/policies", ("GET", "HEAD"), console.policies.page, openai_errors)
            router.add("/console/tools", ("GET", "HEAD"), console.tools.page, openai_errors)
            if console.keys is not None and console.budgets is not None and console.audit is not None:
                for path in ("/console/keys", "/console/keys/*", "/console/projects", "/console/projects/*"):
                    router.add(path, ("GET", "HEAD", "POST"), console.keys.route, openai_errors)
                for path in ("/console/budgets", "/console/budgets/*", "/console/limits/*"):
                    router.add(path, ("GET", "HEAD", "POST"), console.budgets.route, openai_errors)
                router.add("/console/audit", ("GET", "HEAD"), console.audit.page, openai_errors)
            if console.guardrails is not None and console.cache is not None:
                router.add("/console/guardrails", ("GET", "HEAD", "POST"), console.guardrails.route, openai_errors)
                for path in ("/console/cache", "/console/cache/*"):
                    router.add(path, ("GET", "HEAD", "POST"), console.cache.route, openai_errors)
            router.add("/models", ("GET", "HEAD"), console.pages.index, openai_errors)
            router.add("/models/*", ("GET", "HEAD"), console.pages.model, openai_errors)
            router.add("/compare", ("GET", "HEAD"), console.pages.compare, openai_errors)
            router.add("/static/*", ("GET", "HEAD"), console.static, openai_errors)
            router.add("/console/simulate", ("POST",), console.simulate, openai_errors)
        return router

    def count_refusal(self, status: int, reason: str) -> None:
        """The native server refused a request before routing it (server/h1.py): counted in /metrics."""
        self.obs.count_refusal(status, reason)

    def render_refusal(self, path: str, status: int, code: str, message: str) -> bytes:
        """A refusal of the native server after a request's head, in the format of the API at ``path``."""
        route = self.router.match(path)
        return (route.render_error if route is not None else error_body)(refusal_error(status, code, message))

    # ----------------------------------------------------------------- RSGI

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Everything built at start-up lives for the process: keep it out of the GC's generations.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        self.obs.start(loop)
        self.governance.start(loop)
        self.mcp.start(loop)

    async def reload(self) -> Reloaded:
        """Re-read the config file (built off the loop, swapped on it); ``ConfigError`` leaves the old one."""
        return self.reloader.apply(await asyncio.to_thread(self.reloader.prepare))

    def on_sighup(self) -> None:
        """``kill -HUP``: reload; a bad file is logged with its file, line and key, and the old config stays."""

        async def run() -> None:
            try:
                await self.reload()
            except ConfigError as exc:
                log.error("config reload refused, the running config stays: %s", exc)

        task = asyncio.get_running_loop().create_task(run())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload_route(self, req: Exchange) -> None:
        """``POST /admin/v1/reload`` (admin key): this worker reloads, then asks the supervisor to reload the
        others (SIGHUP to the parent, which forwards it to every worker)."""
        require_admin(self.auth, req, "Reloading the config needs the admin key.")
        try:
            result = await self.reload()
        except ConfigError as exc:
            raise InvalidRequest(f"The config file was not reloaded, the running config stays: {exc}",
                                 code="invalid_config") from None
        workers = self.settings.server.workers
        if workers > 1:
            os.kill(os.getppid(), signal.SIGHUP)
        req.json(200, {**result.to_json(), "workers": workers})

    def start_draining(self) -> None:
        """The process is stopping: ``/readyz`` answers 503 from now on (``server/runner.py``)."""
        self.health_api.draining = True

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if not loop.is_closed():
            if self.cache is not None:
                loop.run_until_complete(self.cache.close())
            loop.run_until_complete(self.mcp.stop())
            loop.run_until_complete(self.governance.stop())
            loop.run_until_complete(self.obs.stop())
            loop.run_until_complete(self.http.close())

    async def __rsgi__(self, scope: RSGIScope, proto: RSGIProtocol) -> None:
        route = self.router.match(scope.path)
        req = Request(scope, proto)
        if req.check_framing and (refused := req.framing_error()) is not None:  # Granian only (entry.py)
            self.count_refusal(refused.status, refused.code or "malformed")
            self._error(req, refused)
            return
        if route is None:
            self._error(req, NotFound(f"Unknown request URL: {scope.method} {scope.path}. "
                                      "Check the path: interlock serves /v1/chat/completions, /v1/models, ..."))
            return
        if scope.method not in route.methods:
            self._error(req, MethodNotAllowed(f"{scope.method} is not allowed on {scope.path}; "
                                              f"use {', '.join(sorted(route.methods))}."), route.render_error)
            return
        try:
            await route.handler(req)
        except GatewayError as err:
            if not req.responded:
                self._error(req, err, route.render_error)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback by answer_internal
            # A handler without the pipeline's lifecycle (or that lifecycle itself) failed: the same
            # 500, log line and metric as a failed inference request, and a request-log record.
            ctx = RequestContext(route.label)
            self.internal_errors.answer(req, ctx, exc, route.render_error)
            try:
                self.ledger.settle(ctx)
            except Exception:
                log.exception("recording the internal error of request %s failed", ctx.id)

    @staticmethod
    def _error(req: Request, err: GatewayError, render: Any = error_body) -> None:
        headers = [("content-type", "application/json"), *err.headers.items()]
        req.send(err.status, render(err), headers)


def gateway_from_env() -> Gateway:
    """The worker-side constructor: the launching process passes the config path in the environment."""
    path = os.environ.get("INTERLOCK_CONFIG") or None
    workers = os.environ.get("INTERLOCK_WORKERS")
    settings = load_settings(Path(path) if path else None, vendor_table=VENDOR_TABLE,
                             overrides={"workers": int(workers)} if workers and workers.isdigit() else None)
    return Gateway(settings)
