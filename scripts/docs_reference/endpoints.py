"""endpoints.md: every route a gateway registers and every operation of its two OpenAPI documents.

The routes come from a gateway built with every optional route on (``Gateway._routes()``), the operations
from ``api/openapi.py`` and ``governance/openapi.py``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .common import GENERATED_NOTE, quiet

#: What each route is for (a route of ``Gateway._routes()`` without an entry fails the build's test).
ROUTES = {
    "/v1/chat/completions": "OpenAI Chat Completions: any model of any vendor, streamed or not.",
    "/v1/messages": "Anthropic Messages in front of any vendor.",
    "/v1/messages/count_tokens": "Anthropic's token count for a Messages request, for any model.",
    "/v1/responses": "OpenAI Responses in front of any vendor, with stored responses and MCP tools.",
    "/v1/responses/*": "A stored response (GET, or GET .../input_items) or forget it (DELETE).",
    "/v1/embeddings": "OpenAI Embeddings for any embedding model.",
    "/v1/models": "The catalog in OpenAI's list shape with OpenRouter's fields.",
    "/v1/models/*": "One model, or `.../endpoints`: every vendor route with live latency, throughput and uptime.",
    "/embed/*": "An SVG badge of a model's live stats, to embed in a page.",
    "/v1/route/explain": "Dry-run routing: the route a request would take and why, without calling a vendor.",
    "/v1/generation": "One request's stats and routing trace by its id (OpenRouter's shape).",
    "/v1/guardrails/check": "Run the guardrails on a text and see what they find, without a model call.",
    "/v1/openapi.json": "The OpenAPI document of the inference API.",
    "/healthz": "Liveness: the process answers.",
    "/readyz": "Readiness: the state store, request log, counters and vendors are usable.",
    "/admin/v1/logs": "The request log: records filtered by project, key, model, status, time.",
    "/admin/v1/logs/*": "One request-log record, with its captured content when the log level keeps it.",
    "/admin/v1/spend": "Spend totals grouped by project, key, model or vendor over a time range.",
    "/metrics": "Prometheus metrics (when `telemetry.metrics` is on).",
    "/admin/v1/projects": "List or create projects.",
    "/admin/v1/projects/*": "Read, change or delete one project.",
    "/admin/v1/keys": "List or create API keys.",
    "/admin/v1/keys/*": "Read, change, rotate or revoke one API key.",
    "/admin/v1/budgets": "List or create budgets.",
    "/admin/v1/budgets/*": "Read, change or delete one budget.",
    "/admin/v1/limits": "List or create rate limits.",
    "/admin/v1/limits/*": "Read, change or delete one rate limit.",
    "/admin/v1/alerts": "Budget alerts sent (thresholds crossed).",
    "/admin/v1/openapi.json": "The OpenAPI document of the admin API.",
    "/admin/v1/cache": "Response cache statistics (GET) or clear entries (DELETE).",
    "/admin/v1/reload": "Re-read the config file: vendors, aliases and policies swapped without a restart (admin key).",
    "/admin/v1/mcp/registered-users": "MCP: list or register users of tool packs.",
    "/admin/v1/mcp/registered-users/*": "MCP: one registered user.",
    "/admin/v1/mcp/access-keys": "MCP: list or issue access keys.",
    "/admin/v1/mcp/access-keys/*": "MCP: one access key.",
    "/admin/v1/mcp/servers": "MCP: list or add upstream MCP servers.",
    "/admin/v1/mcp/servers/*": "MCP: one upstream server.",
    "/admin/v1/mcp/tool-packs": "MCP: list or define tool packs.",
    "/admin/v1/mcp/tool-packs/*": "MCP: one tool pack.",
    "/admin/v1/mcp/calls": "MCP: the tool-call log.",
    "/admin/v1/mcp/calls/*": "MCP: one tool call.",
    "/api/v1/tool-packs/*": "MCP: a tool pack served as an MCP server (Streamable HTTP).",
    "/console/signin": "Console: the sign-in form (GET) or sign in with a key (POST).",
    "/console/signout": "Console: sign out.",
    "/console/playground": "Console: the playground page.",
    "/console/api/chat": "Console: the playground's chat call (this gateway's chat path, the session as caller).",
    "/console/api/generation": "Console: a playground request's routing record.",
    "/console/requests": "Console: the request log.",
    "/console/requests/*": "Console: one request, or the live tail.",
    "/console/overview": "Console: traffic, spend and health at a glance.",
    "/console/spend": "Console: spend by project, key, model and vendor.",
    "/console/spend/*": "Console: spend views and their CSV export.",
    "/console/policies": "Console: routing policies, a dry run and replays.",
    "/console/tools": "Console: MCP servers, tool packs and calls.",
    "/console/keys": "Console: API keys.",
    "/console/keys/*": "Console: revoke or rotate a key.",
    "/console/projects": "Console: create a project (POST).",
    "/console/projects/*": "Console: change a project.",
    "/console/budgets": "Console: budgets and rate limits.",
    "/console/budgets/*": "Console: change or delete a budget.",
    "/console/limits/*": "Console: change or delete a rate limit.",
    "/console/audit": "Console: the admin audit log.",
    "/console/guardrails": "Console: guardrail settings and a test box.",
    "/console/cache": "Console: response cache statistics.",
    "/console/cache/*": "Console: clear the response cache.",
    "/console/simulate": "Console: try a model on the simulator from its catalog page.",
    "/models": "Console: the model catalog, filtered and sorted.",
    "/models/*": "Console: one model's page (prices, routes, live stats).",
    "/compare": "Console: models side by side.",
    "/static/*": "The console's CSS, scripts and icons.",
    "/docs": "This documentation site (when it was built with `make docs`); redirects to `/docs/`.",
    "/docs/*": "This documentation site's pages and assets.",
}


@dataclass(frozen=True)
class Route:
    path: str
    methods: tuple[str, ...]
    meaning: str


def gateway_routes() -> list[Route]:
    """Every route of a gateway built with every optional part on (console, metrics, docs)."""
    from interlock.app import Gateway
    from interlock.config import load_settings
    from interlock.vendors.registry import VENDOR_TABLE

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "index.html").write_text("<!doctype html>")
        env = {"INTERLOCK_HOME": str(Path(tmp) / "state"), "INTERLOCK_DOCS_DIR": str(site)}
        with quiet():
            gateway = Gateway(load_settings(None, vendor_table=VENDOR_TABLE, environ=env))
        router = gateway.router
        found: dict[str, Route] = {}
        for route in [*router.exact.values(), *(r for _, r in router.prefixes)]:
            if route.label not in found:
                found[route.label] = Route(route.label, tuple(sorted(route.methods)), ROUTES.get(route.label, ""))
        gateway.store.close()
    return list(found.values())


def openapi_operations() -> list[tuple[str, str, str, str]]:
    """(document, method, path, summary) of both OpenAPI documents."""
    from interlock.api.openapi import document as inference
    from interlock.governance.openapi import document as admin

    out = []
    for label, doc in (("/v1/openapi.json", inference()), ("/admin/v1/openapi.json", admin())):
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method in ("get", "post", "put", "patch", "delete", "head"):
                    out.append((label, method.upper(), path, op.get("summary") or op.get("description") or ""))
    return out


def route_of(path: str, routes: list[Route]) -> Route | None:
    """The route that serves an OpenAPI path (``/v1/models/{id}`` → ``/v1/models/*``)."""
    for route in routes:
        if route.path == path:
            return route
    for route in routes:
        if route.path.endswith("*") and "{" in path and path.startswith(route.path[:-1]):
            return route
    return None


def endpoints_page() -> str:
    routes = gateway_routes()
    ops = openapi_operations()
    lines = ["# Endpoints", "", GENERATED_NOTE.strip(), "",
             "Every route the gateway serves, from its router (`Gateway._routes()`), and every operation of its "
             "two OpenAPI documents. `*` matches the rest of the path. Inference routes take an API key "
             "(`Authorization: Bearer`, or Anthropic's `x-api-key`); `/admin/` routes the admin key; console "
             "pages a signed-in session; `/healthz`, `/readyz`, the catalog pages and the docs none. *Methods* are "
             "those the router lets through to the route's handler, which may refuse some for a given path (the "
             "OpenAPI sections below list each operation).", "",
             "## Routes", "", "| route | methods | what it is | OpenAPI |", "|---|---|---|---|"]
    for route in sorted(routes, key=lambda r: r.path):
        documented = sorted({doc for doc, _, path, _ in ops if route_of(path, routes) == route})
        lines.append(f"| `{route.path}` | {', '.join(route.methods)} | {route.meaning} | "
                     + (", ".join(f"`{d}`" for d in documented) or "—") + " |")
    for label, title in (("/v1/openapi.json", "Inference API"), ("/admin/v1/openapi.json", "Admin API")):
        lines += ["", f"## {title} (`GET {label}`)", "",
                  "The operations of the OpenAPI document the gateway serves at this path; request and "
                  "response schemas are in the document.", "",
                  "| method | path | summary |", "|---|---|---|"]
        for doc, method, path, summary in ops:
            if doc == label:
                served = route_of(path, routes)
                meaning = summary or (ROUTES.get(served.path, "") if served is not None else "")
                lines.append(f"| {method} | `{path}` | {meaning} |")
    return "\n".join(lines) + "\n"

