"""Building the MCP endpoint of one worker from what the gateway already has (``app.py`` calls this)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from interlock.core.clock import Clock
from interlock.core.context import RequestContext
from interlock.core.principal import Principal
from interlock.governance.auth import Authenticator
from interlock.governance.service import Governance
from interlock.guardrails.guard import Guards
from interlock.ledger.settings import LogSettings
from interlock.mcp.access import Credentials, CredentialStore
from interlock.mcp.auth import Directory, McpAuth, Registry
from interlock.mcp.calls import Admission, CallSink, ToolRunner
from interlock.mcp.oauth import TokenKeeper
from interlock.mcp.server import McpEndpoint
from interlock.mcp.settings import McpSettings
from interlock.mcp.upstream import UpstreamPool
from interlock.observability.metrics import Registry as Metrics


class Store(Directory, CredentialStore, Protocol):
    """The store the endpoint reads (``mcp/store.McpStore`` is one)."""


def content_logger(governance: Governance, log: LogSettings, logging_on: bool) -> Callable[[Principal], bool]:
    """Whether a caller's tool-call arguments and results may be logged: its project's log level (or the
    global one) is ``full`` and neither it nor the gateway asks for zero data retention."""

    def content_for(principal: Principal) -> bool:
        if not logging_on:
            return False
        ctx = RequestContext("mcp", principal=principal, zero_data_retention=principal.zero_data_retention)
        project = governance.defs.projects.get(principal.project or "")
        ctx.log_level = project.log_level if project is not None else None
        return log.level_for(ctx) == "full"

    return content_for


def build_mcp(settings: McpSettings, auth: Authenticator, store: Store, sink: CallSink, guards: Guards,
              metrics: Metrics, clock: Clock, *, content_for: Callable[[Principal], bool],
              admission: Admission | None, count_guardrail: Callable[[str, str, str], None] | None,
              max_body: int) -> McpEndpoint:
    registry = Registry(settings, store)
    runner = ToolRunner(registry, Credentials(store, TokenKeeper()), UpstreamPool(), guards, sink, metrics,
                        admission=admission, count_guardrail=count_guardrail)
    mcp_auth = McpAuth(auth, registry, store, content_for, clock.time)
    return McpEndpoint(mcp_auth, runner, stateless=settings.stateless, max_body=max_body)
