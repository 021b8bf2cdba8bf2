"""The MCP gateway of one worker, built from what the gateway already has (``app.py`` holds one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from interlock.config import ConfigError, Settings
from interlock.core.clock import Clock
from interlock.core.context import RequestContext
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.governance.auth import Authenticator
from interlock.governance.service import Governance
from interlock.guardrails.guard import Guards
from interlock.ledger.settings import LogSettings
from interlock.ledger.wiring import Observability
from interlock.mcp.access import Credentials
from interlock.mcp.admin import McpAdmin, RouteTable
from interlock.mcp.auth import McpAuth, Registry
from interlock.mcp.calllog import McpCallLog, hourly, summary
from interlock.mcp.calls import ToolRunner
from interlock.mcp.oauth import TokenKeeper
from interlock.mcp.responses_tools import Handler, McpResponses
from interlock.mcp.sealing import Sealer, SealError
from interlock.mcp.server import McpEndpoint, jsonrpc_error_body
from interlock.mcp.settings import McpSettings
from interlock.mcp.store import McpStore
from interlock.mcp.upstream import UpstreamPool

#: Where the endpoint lives (``server.PATH_RE`` is the whole shape).
ROUTE = "/api/v1/tool-packs/*"


def content_logger(governance: Governance, log: LogSettings) -> Callable[[Principal], bool]:
    """Whether a caller's tool-call arguments and results may be logged: its project's log level (or the
    global one) is ``full`` and neither it nor the gateway asks for zero data retention."""

    def content_for(principal: Principal) -> bool:
        if not log.enabled:
            return False
        ctx = RequestContext("mcp", principal=principal, zero_data_retention=principal.zero_data_retention)
        project = governance.defs.projects.get(principal.project or "")
        ctx.log_level = project.log_level if project is not None else None
        return log.level_for(ctx) == "full"

    return content_for


class McpGateway:
    def __init__(self, settings: Settings, auth: Authenticator, governance: Governance, obs: Observability,
                 guards: Guards, secret: bytes, count_guardrail: Callable[[str, str, str], None],
                 clock: Clock) -> None:
        self.settings = McpSettings.from_settings(settings)
        self.auth = auth
        self.max_body = settings.server.max_body_bytes
        sealer = Sealer.from_env(settings.environ, settings.server.state_dir)
        self.store = McpStore(governance.store, sealer, secret, clock, self.settings.servers)
        log = obs.log_settings
        self.calls = McpCallLog(governance.store, retention_days=log.retention_days, clock=clock,
                                enabled=log.enabled and log.level != "off")
        self.registry = Registry(self.settings, self.store)
        self.tokens = TokenKeeper()
        self.runner = ToolRunner(self.registry, Credentials(self.store, self.tokens), UpstreamPool(), guards,
                                 self.calls, obs.registry, admission=governance.admit_tool_call, count_guardrail=count_guardrail)
        self.mcp_auth = McpAuth(auth, self.registry, self.store, content_logger(governance, log), clock.time)
        stateless = self.settings.stateless
        if stateless is None:  # auto: sessions live in one worker, and the kernel picks the worker per connection
            stateless = settings.server.workers > 1
        self.endpoint = McpEndpoint(self.mcp_auth, self.runner, stateless=stateless, max_body=self.max_body)
        self.admin = McpAdmin(self.store, self.calls, self.settings, auth, self.registry,
                              lambda: governance.defs.projects)

    @staticmethod
    def validate(settings: Settings) -> None:
        McpSettings.from_settings(settings)
        try:
            Sealer.from_env(settings.environ, settings.server.state_dir)
        except SealError as exc:
            raise ConfigError(str(exc)) from None

    def add_routes(self, router: RouteTable) -> None:
        router.add(ROUTE, ("GET", "POST", "DELETE"), self.endpoint.handle, jsonrpc_error_body)
        self.admin.add_routes(router)

    def responses(self, pipeline: Handler) -> Handler:
        """``POST /v1/responses``: the tool loop for requests with ``mcp`` tools, else ``pipeline`` itself."""
        return McpResponses(pipeline, self._authenticate, self.mcp_auth, self.runner, self.settings, self.max_body)

    def _authenticate(self, ex: Exchange) -> Principal:
        return self.auth.authenticate(ex.header("authorization"), ex.header("x-api-key"),
                                      ex.header("x-interlock-project"))

    async def overview(self, principal: Principal, now: float) -> dict[str, Any]:
        """What the console's Tools page shows (plain data; credentials never): the servers, the caller's packs,
        registered users, and calls per tool over the last 24 hours."""
        own = None if principal.admin else principal.project
        servers, packs = await self.registry.current()
        await self.calls.flush()
        since = now - 86400.0
        calls = await summary(self.store.gov, own, since)
        # Per UTC hour, the same calls: 25 hours, the first and the last (the current one) partial.
        first = int(since // 3600)
        hours = int(now // 3600) - first + 1
        series = await hourly(self.store.gov, own, since, hours)
        for c in calls:
            c["hourly"], c["hourly_errors"] = series.get((c["pack"], c["server"], c["tool"]),
                                                         ([0] * hours, [0] * hours))
        by_server: dict[str, dict[str, float]] = {}
        for c in calls:
            s = by_server.setdefault(c["server"], {"calls": 0, "errors": 0})
            s["calls"] += c["calls"]
            s["errors"] += c["errors"]
        visible = {k: p for k, p in packs.items() if own is None or p.project == own}
        kinds = await self.store.credential_kinds(own)
        used = {srv for p in visible.values() for srv in p.servers()}
        return {
            "servers": [{**spec.public(), "calls": by_server.get(name, {}).get("calls", 0),
                         "errors": by_server.get(name, {}).get("errors", 0)}
                        for name, spec in sorted(servers.items()) if own is None or name in used],
            "packs": [p.public() for _, p in sorted(visible.items())],
            "users": [{"id": u.id, "project": u.project, "name": u.name,
                       "credentials": kinds.get((u.project, u.id), [])}
                      for u in await self.store.users(own, "", 100)],
            "calls": calls, "first_hour": first,
        }

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint.start(loop)
        self.calls.start(loop)

    async def stop(self) -> None:
        await self.endpoint.stop()
        await self.calls.stop()
        await self.tokens.close()
