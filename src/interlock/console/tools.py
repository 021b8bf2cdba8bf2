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


#: Sparkline geometry: a bar per hour, this wide with a gap after it, in a box this high.
BAR, GAP, HEIGHT = 3, 1, 24


def tool_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Calls per tool, formatted: the error share as a figure and a bar (text first, the bar only adds), and
    calls per hour as a sparkline whose summary is in words (its peak hour) for screen readers."""
    rows = []
    first = data.get("first_hour", 0)
    for c in data.get("calls", []):
        calls = c["calls"] or 1
        rows.append({**c, "error_pct": f"{100.0 * c['errors'] / calls:.1f}%", "mean": f"{c['mean_ms']:.0f} ms",
                     "bar": min(100, round(100 * c["calls"] / max(x["calls"] for x in data["calls"]))),
                     **spark(first, c.get("hourly") or [], c.get("hourly_errors") or [])})
    return rows


def spark(first_hour: int, counts: list[int], errors: list[int]) -> dict[str, Any]:
    """A sparkline's bars (calls, with the errors' share drawn over them) and its summary in words."""
    top = max(counts, default=0)
    bars = []
    for i, (n, e) in enumerate(zip(counts, errors, strict=True)):
        h = round(HEIGHT * n / top, 2) if top else 0.0
        eh = round(h * e / n, 2) if n else 0.0
        hour = (first_hour + i) % 24
        bars.append({"x": i * (BAR + GAP), "h": h, "y": HEIGHT - h, "eh": eh, "ey": HEIGHT - eh,
                     "title": f"{hour:02d}:00 UTC: {n} call{'' if n == 1 else 's'}, {e} error{'' if e == 1 else 's'}"})
    peak = counts.index(top) if top else 0
    words = (f"Calls per hour over 24 hours: at most {top}, at {(first_hour + peak) % 24:02d}:00 UTC"
             if top else "No calls in 24 hours")
    return {"spark": bars, "spark_width": len(counts) * (BAR + GAP), "spark_height": HEIGHT, "spark_label": words}
