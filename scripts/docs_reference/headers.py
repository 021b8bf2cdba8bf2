"""headers.md: the response headers the gateway sets and the ``x-interlock-*`` headers it reads (AST scan)."""

from __future__ import annotations

import ast
import re

from .common import GENERATED_NOTE, const_str, source_modules

#: Source folders whose headers are the upstream side (what interlock sends vendors, or the simulator as a
#: vendor answers), not the gateway's answers.
#: Modules that set no response header: the vendor side, and data tables of header-shaped names (regions).
_UPSTREAM = ("interlock/vendors/", "interlock/simulator/", "interlock/catalog/", "interlock/core/regions.py")
_HEADER = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$|^(location|etag)$")
#: Strings shaped like header names that are not (cookie attributes, model ids, CSRF values).
_NOT_HEADERS = frozenset({"same-origin", "max-age", "computer-use"})

#: What each header means. Response headers the code sets, and the x-interlock-* request headers it reads.
HEADERS = {
    "x-interlock-request-id": "The request's id: the key of its request-log record and of `GET /v1/generation?id=`.",
    "x-interlock-model": "The model that answered, as vendor/model.",
    "x-interlock-vendor": "The vendor that answered.",
    "x-interlock-route": "The target that answered (its route key), or the first planned when none did.",
    "x-interlock-route-reason": "One sentence on why that target: the strategy's reason and any attempts that failed.",
    "x-interlock-cost-usd": "The request's cost in USD (exact from usage, else estimated).",
    "x-interlock-cost-estimated": "`true` when the cost is an estimate (the vendor reported no usage).",
    "x-interlock-dropped-params": "Comma-separated request parameters the chosen vendor does not support, dropped.",
    "x-interlock-guardrails": "What the guardrails did: `detector=action, ...`.",
    "x-interlock-cache": "The response cache's verdict: `hit`, `miss` or `bypass`.",
    "x-interlock-cache-age": "On a cache hit: the stored answer's age in seconds.",
    "x-interlock-cache-reason": "Why the cache was bypassed for this request.",
    "x-interlock-cache-similarity": "On a semantic cache hit: the prompts' similarity.",
    "x-interlock-budget-warning": "Budgets this request counts against that passed their warning threshold.",
    "x-interlock-budget-limit-usd": "With a 402: the hard budget's limit in USD.",
    "x-interlock-budget-remaining-usd": "With a 402: what is left of the hard budget in USD.",
    "x-interlock-mcp-rounds": "`/v1/responses` with MCP tools: the tool-call rounds the gateway ran.",
    "x-ratelimit-limit-requests": "The caller's request limit per window (OpenAI's header).",
    "x-ratelimit-remaining-requests": "Requests left in the current window.",
    "x-ratelimit-reset-requests": "When the request window resets.",
    "x-ratelimit-limit-tokens": "The caller's token limit per window.",
    "x-ratelimit-remaining-tokens": "Tokens left in the current window.",
    "x-ratelimit-reset-tokens": "When the token window resets.",
    "retry-after": "With a 429 or 503: seconds to wait before trying again.",
    "x-accel-buffering": "`no` on streams, so a proxy (nginx) passes events at once.",
    "content-type": "The body's media type.",
    "cache-control": "Caching rules: static files may be kept; pages and answers are `no-store`.",
    "etag": "A static file's content hash, for conditional requests.",
    "location": "Where a redirect points.",
    "content-security-policy": "Console and docs pages load nothing from other hosts.",
    "x-content-type-options": "`nosniff`: browsers use the declared content type.",
    "x-frame-options": "`DENY`: pages are not framed by other sites.",
    "referrer-policy": "`same-origin`: no referrer to other sites.",
    "set-cookie": "The console's session and CSRF cookies.",
    "content-disposition": "CSV exports: the file name to save.",
}

#: What each request header the gateway reads means.
REQUEST_HEADERS = {
    "x-interlock-cache": "`on` or `off`: ask for the response cache, or skip it (`cache.allow_request_opt_in`).",
    "x-interlock-project": "The project to account the request to (admin key, or a key allowed several).",
    "x-interlock-tags": "Tags recorded with the request, for filtering the log and spend.",
    "x-interlock-regions": "Jurisdictions or regions (comma-separated) this request may run in: narrows the "
                           "project's and the key's (data residency); widening them is a 403 `region_not_allowed`.",
    "x-interlock-route-difficulty": "`force-weak`, `force-strong` or `auto` (the default): overrides the "
                                    "`difficulty` strategy's tier for this request.",
    "x-interlock-cache-ttl": "How long to keep this answer in the response cache (seconds).",
    "x-interlock-cache-namespace": "A namespace separating cache entries.",
    "x-interlock-simulator-fault": "Simulator only: inject a fault (an error status, a hang, a reset, a cut or malformed stream).",
    "x-interlock-simulator-latency": "Simulator only: the time to first token and tokens per second to simulate.",
}


def scanned_headers() -> tuple[set[str], set[str]]:
    """(response headers the gateway sets, x-interlock-* request headers it reads), scanned from the source.

    A request header is an ``x-interlock-*`` string read with ``header(...)``, named as an error's ``param``,
    or one the gateway never sets; a response header is a header-shaped string set in a (name, value) pair,
    a ``headers[...] =`` assignment or a ``{"x-interlock-...": ...}`` mapping outside the upstream side."""
    response: set[str] = set()
    mentioned: set[str] = set()
    read: set[str] = set()
    for path, tree in source_modules():
        upstream = path.startswith(_UPSTREAM)
        for node in ast.walk(tree):
            name = const_str(node)
            if name is not None and re.fullmatch(r"x-interlock-[a-z0-9-]+", name):
                mentioned.add(name)
            if isinstance(node, ast.Call):
                func = node.func.id if isinstance(node.func, ast.Name) else \
                    node.func.attr if isinstance(node.func, ast.Attribute) else ""
                args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "param")] \
                    if func == "header" else [k.value for k in node.keywords if k.arg == "param"]
                read.update(n for n in map(const_str, args) if n and n.startswith("x-interlock-"))
            if upstream:
                continue
            if isinstance(node, ast.Tuple) and len(node.elts) == 2:
                name = const_str(node.elts[0])
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                name = const_str(node.slice)
            elif isinstance(node, ast.Dict):
                for key in node.keys:
                    key_name = const_str(key)
                    if key_name is not None and key_name.startswith("x-interlock-"):
                        response.add(key_name)
                continue
            else:
                continue
            if name is not None and _HEADER.match(name) and name not in _NOT_HEADERS:
                response.add(name)
    return response, read | (mentioned - response)


def headers_page() -> str:
    response, request = scanned_headers()
    lines = ["# Headers", "", GENERATED_NOTE.strip(), "",
             "Every header the gateway sets on its answers, and the `x-interlock-*` headers it reads from "
             "requests, scanned from the source. A vendor's own headers are not passed to the caller.", "",
             "## Response headers", "", "| header | meaning |", "|---|---|"]
    lines += [f"| `{h}` | {HEADERS.get(h, '')} |" for h in sorted(response)]
    lines += ["", "## Request headers", "", "| header | meaning |", "|---|---|"]
    lines += [f"| `{h}` | {REQUEST_HEADERS.get(h, '')} |" for h in sorted(request)]
    return "\n".join(lines) + "\n"

