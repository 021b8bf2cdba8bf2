"""``/console/tools``: the MCP gateway at a glance — servers with their calls and errors over 24 hours, the
caller's tool packs and their tools, registered users (which credentials they have, never the secrets) and
calls per tool. The data comes from the MCP gateway (``mcp/setup.McpGateway.overview``), handed in by
``app.py``: ``console`` and ``mcp`` share a layer and do not import each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from jinja2 import Environment

from interlock.console.sessions import Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.web import redirect, send_page
from interlock.core.clock import Clock
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal

PAGE = "/console/tools"
Overview = Callable[[Principal, float], Awaitable[dict[str, Any]]]


class ToolsPage:
    def __init__(self, env: Environment, sessions: Sessions, overview: Overview | None, clock: Clock) -> None:
        self.env = env
        self.sessions = sessions
        self.overview = overview
        self.clock = clock

    async def page(self, req: Exchange) -> None:
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE))
            return
        data = await self.overview(session.principal, self.clock.time()) if self.overview is not None else None
        send_page(req, self.env, 200, "tools.html", {"title": "Tools", "active": "tools", **viewer(session),
                                                     "admin": session.principal.admin, "data": data,
                                                     "rows": tool_rows(data) if data else []})


def tool_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Calls per tool, formatted: the error share as a figure and a bar (text first, the bar only adds)."""
    rows = []
    for c in data.get("calls", []):
        calls = c["calls"] or 1
        rows.append({**c, "error_pct": f"{100.0 * c['errors'] / calls:.1f}%", "mean": f"{c['mean_ms']:.0f} ms",
                     "bar": min(100, round(100 * c["calls"] / max(x["calls"] for x in data["calls"])))})
    return rows
