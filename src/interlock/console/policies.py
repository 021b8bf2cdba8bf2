"""``/console/policies``: the routing policies and aliases, a dry run of the routing decision and a what-if
replay of recorded requests under a policy.

Read-only: every form is a GET, nothing changes state and nothing is sent to a vendor. The dry run is
``POST /v1/route/explain``'s own code (``RoutingApi.explain_for``, handed in by ``app.py``: ``api`` and
``console`` do not import each other), for a request made from the form or from a recorded request of the
log. The replay (``routing/replay.py``) re-plans the last N recorded requests of a project under an
existing policy or one edited in the page, priced with the catalog at the recorded usage. Policies are
gateway-wide, so a project key sees them all, but only its own project's requests: another project's
request id reads as unknown (404) and naming another project is refused (403). The log read is one indexed
query (project, newest first, a limit), off the event loop like every store read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import yaml
from jinja2 import Environment

from interlock.configfile import ConfigError
from interlock.console.sessions import Sessions
from interlock.console.signin import signin_url, viewer
from interlock.console.web import redirect, send_page
from interlock.core.errors import GatewayError
from interlock.core.exchange import Exchange
from interlock.core.policy import DifficultyRule, Policy
from interlock.core.principal import Principal
from interlock.ledger.schema import LogQuery
from interlock.ledger.writer import LogStore
from interlock.routing.replay import MAX_POLICY_CHARS, Outcome, PolicyLab, replay_request, summarize

PAGE = "/console/policies"
#: ``RoutingApi.explain_for``: (caller, chat request, tags, prompt tokens or None) -> the explanation.
Explain = Callable[[Principal, dict[str, Any], tuple[str, ...], int | None], dict[str, Any]]
DEFAULT_N = 200
MAX_N = 5000
#: Rows replayed between two yields to the event loop.
_CHUNK = 250
FIELDS = ("run", "model", "prompt", "max_tokens", "stream", "tools", "schema", "reasoning", "rid",
          "policy", "edited", "project", "n")
_EFFORTS = ("", "low", "medium", "high")
_STUB_TOOL = {"type": "function", "function": {"name": "lookup", "description": "A tool the request offers.",
                                               "parameters": {"type": "object", "properties": {}}}}


class FormError(Exception):
    """Bad input in one field: the page again, with ``message`` next to ``field``."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


def form_of(query: str) -> dict[str, str]:
    """The page's fields from the query string (first value of each; others ignored)."""
    raw = parse_qs(query, keep_blank_values=True)
    return {k: v[0] for k, v in raw.items() if k in FIELDS and v}


class PoliciesPage:
    def __init__(self, env: Environment, sessions: Sessions, lab: PolicyLab | None, explain: Explain | None,
                 store: LogStore | None) -> None:
        self.env = env
        self.sessions = sessions
        self.lab = lab
        self.explain = explain
        self.store = store

    async def page(self, req: Exchange) -> None:
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url(PAGE + (f"?{req.query}" if req.query else "")))
            return
        principal = session.principal
        form = form_of(req.query)
        context: dict[str, Any] = {
            "title": "Routing policies", "active": "policies", **viewer(session), "admin": principal.admin,
            "project": principal.project, "form": form, "errors": {}, "dry": None, "replay": None,
            "policies": policy_rows(self.lab) if self.lab is not None else [],
            "aliases": sorted(self.lab.aliases.items()) if self.lab is not None else [],
            "log_off": self.store is None, "default_n": DEFAULT_N, "max_n": MAX_N,
            "max_policy_chars": MAX_POLICY_CHARS, "efforts": _EFFORTS,
            "templates": {name: policy_yaml(p) for name, p in self.lab.policies.items()} if self.lab else {},
        }
        status = 200
        run = form.get("run")
        try:
            if run == "dry":
                context["dry"] = await self.dry_run(principal, form)
            elif run == "replay":
                context["replay"] = await self.replay(principal, form)
        except FormError as err:
            status = err.status
            context["errors"] = {err.field: err.message}
        send_page(req, self.env, status, "policies.html", context)

    # ------------------------------------------------------------------ dry run

    async def dry_run(self, principal: Principal, form: Mapping[str, str]) -> dict[str, Any]:
        if self.explain is None:
            raise FormError("model", "Routing explanations are not available on this worker.")
        rid = form.get("rid", "").strip()
        model = form.get("model", "").strip()
        tokens: int | None = None
        if rid:
            row = await self.store.get(rid) if self.store is not None else None
            if row is None or (not principal.admin and row.get("project") != principal.project):
                raise FormError("rid", f"No recorded request '{rid[:80]}' in the log you can read (it may be "
                                       "older than the retention period, or of another project).", 404)
            made = replay_request(row, model or str(row.get("requested_model") or ""))
            if made is None or not made[0]["model"]:
                raise FormError("rid", f"Request '{rid[:80]}' is not a chat request with recorded usage "
                                       "(embeddings and failed requests cannot be re-planned).")
            request, tokens = made
        else:
            request = sample_request(form)
        try:
            body = self.explain(principal, request, (), tokens)
        except GatewayError as err:
            field = "rid" if rid else ("max_tokens" if err.param in ("max_tokens", "max_completion_tokens")
                                       else "model")
            raise FormError(field, err.message, 400 if err.status < 500 else err.status) from None
        return dry_view(body, rid)

    # ------------------------------------------------------------------ replay

    async def replay(self, principal: Principal, form: Mapping[str, str]) -> dict[str, Any]:
        lab = self.lab
        if lab is None:
            raise FormError("policy", "Routing is not available on this worker.")
        edited = form.get("edited", "")
        chosen = form.get("policy", "").strip()
        if chosen:
            if chosen not in lab.policies:
                raise FormError("policy", f"'{chosen[:80]}' is not a configured policy.")
            policy = lab.policies[chosen]
            label = f"policy {chosen}"
        elif edited.strip():
            try:
                policy = lab.parse(edited)
            except ConfigError as err:
                raise FormError("edited", str(err)) from None
            label = "the edited policy"
        else:
            raise FormError("policy", "Choose a configured policy, or choose “edited below” and write one in the box.")
        n = parse_n(form.get("n", ""))
        project = form.get("project", "").strip() or None
        if not principal.admin:
            if project is not None and project != principal.project:
                raise FormError("project", f"This key belongs to project {principal.project!r}; it cannot "
                                           f"replay {project[:64]!r}'s requests.", 403)
            project = principal.project
        if self.store is None:
            raise FormError("n", "The request log is off on this gateway (logging.level: off): there is "
                                 "nothing to replay.")
        rows = await self.store.query(LogQuery(project=project, limit=n))
        replayer = lab.replayer(policy)
        outcomes: list[Outcome] = []
        for i, row in enumerate(rows):
            outcome = replayer.one(row)
            if outcome is not None:
                outcomes.append(outcome)
            if i % _CHUNK == _CHUNK - 1:
                await asyncio.sleep(0)  # a long replay leaves the loop to other requests between chunks
        return replay_view(summarize(outcomes), label, policy.strategy, len(rows), project, n)


# ----------------------------------------------------------------- pure helpers


def parse_n(text: str) -> int:
    if not text.strip():
        return DEFAULT_N
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_N:
        raise FormError("n", f"Expected a whole number of requests from 1 to {MAX_N:,}, got {text[:20]!r}.")
    return n


def sample_request(form: Mapping[str, str]) -> dict[str, Any]:
    """The dry run's chat request from the form (model, prompt and the options explain considers)."""
    model = form.get("model", "").strip()
    if not model:
        raise FormError("model", "Name a model, a policy or an alias (or give a recorded request id).")
    prompt = form.get("prompt", "").strip() or "Hello"
    request: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt[:20_000]}]}
    raw = form.get("max_tokens", "").strip()
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            wanted = 0
        if not 1 <= wanted <= 10_000_000:
            raise FormError("max_tokens", f"Expected a positive whole number of tokens, got {raw[:20]!r}.")
        request["max_tokens"] = wanted
    if form.get("stream"):
        request["stream"] = True
    if form.get("tools"):
        request["tools"] = [_STUB_TOOL]
    if form.get("schema"):
        request["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": {"type": "object", "properties": {"answer": {"type": "string"}}}}}
    effort = form.get("reasoning", "")
    if effort not in _EFFORTS:
        raise FormError("reasoning", f"Expected one of low, medium, high, got {effort[:20]!r}.")
    if effort:
        request["reasoning_effort"] = effort
    return request


def _per_m(value: int | None) -> str:
    return "—" if value is None else f"${value / 1e6:,.4g}"


def policy_yaml(policy: Policy) -> str:
    """A configured policy as the YAML body the edit box takes (a starting point for a what-if)."""
    targets = [t.name if t.weight == 1.0 else {"model": t.name, "weight": t.weight} for t in policy.targets]
    body: dict[str, Any] = {"targets": targets, "strategy": policy.strategy}
    rule = policy.difficulty
    if rule is not None:
        weak = len(rule.weak)
        del body["targets"]
        body["tiers"] = {"weak": targets[:weak], "strong": targets[weak:]}
        body["tier_strategy"] = rule.tier_strategy
        body["difficulty"] = {"threshold": round(rule.threshold, 6)} if rule.strong_share is None else {
            "strong_share": rule.strong_share}
        if not rule.fallback_across_tiers:
            body["difficulty"]["fallback_across_tiers"] = False
    if policy.expected_output_tokens is not None:
        body["expected_output_tokens"] = policy.expected_output_tokens
    if policy.strategy == "balanced":
        body["balance"] = {k: round(v, 4) for k, v in policy.balance.items()}
    if policy.quality_weights:
        body["quality"] = {"weights": dict(policy.quality_weights),
                           "scores": {k: dict(v) for k, v in policy.scores.items()}}
    f = policy.filters
    filters: dict[str, Any] = {}
    if f.zdr:
        filters["zdr"] = True
    if f.vendors:
        filters["vendors"] = sorted(f.vendors)
    if f.exclude_vendors:
        filters["exclude_vendors"] = sorted(f.exclude_vendors)
    if f.capabilities:
        filters["capabilities"] = sorted(f.capabilities)
    if f.max_price.active:
        filters["max_price"] = {k: v for k, v in (("input", f.max_price.input), ("output", f.max_price.output))
                                if v is not None}
    if filters:
        body["filters"] = filters
    return yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def _filters_text(policy: Policy) -> str:
    f = policy.filters
    parts = []
    if f.zdr:
        parts.append("ZDR only")
    if f.vendors:
        parts.append("vendors: " + ", ".join(sorted(f.vendors)))
    if f.exclude_vendors:
        parts.append("not: " + ", ".join(sorted(f.exclude_vendors)))
    if f.capabilities:
        parts.append("needs " + ", ".join(sorted(f.capabilities)))
    if f.max_price.input is not None:
        parts.append(f"input ≤ ${f.max_price.input:g}/M")
    if f.max_price.output is not None:
        parts.append(f"output ≤ ${f.max_price.output:g}/M")
    return "; ".join(parts) or "none"


def policy_rows(lab: PolicyLab) -> list[dict[str, Any]]:
    """The configured policies: targets as written (with weights), the routes they resolve to here."""
    rows = []
    for name, policy in sorted(lab.policies.items()):
        try:
            plan = lab.engine.planner.plan(name)
            routes = [{"key": t.key, "input": _per_m(t.price.input if t.price else None),
                       "output": _per_m(t.price.output if t.price else None)} for t in plan.targets]
            problem = ""
        except GatewayError as err:
            routes, problem = [], err.message
        total = sum(t.weight for t in policy.targets) or 1.0
        rule = policy.difficulty
        strong = frozenset(rule.strong) if rule is not None else frozenset()
        rows.append({
            "name": name, "strategy": policy.strategy, "detail": _difficulty_text(rule) if rule is not None else "",
            "targets": [{"name": t.name, "weight": f"{t.weight:g}", "share": f"{100 * t.weight / total:.0f}%",
                         "tier": None if rule is None else "strong" if t.name in strong else "weak"}
                        for t in policy.targets],
            "weighted": policy.strategy == "weighted" or any(t.weight != 1.0 for t in policy.targets),
            "filters": _filters_text(policy), "routes": routes, "problem": problem,
            "expected_output": policy.expected_output_tokens or "request's max tokens (≤ 1,000), else 500",
            "retry": f"{policy.retry.attempts} tries per target", "timeout": f"{policy.timeout_s:g} s",
        })
    return rows


def _difficulty_text(rule: DifficultyRule) -> str:
    share = f", strong_share {100 * rule.strong_share:g}%" if rule.strong_share is not None else ""
    across = "" if rule.fallback_across_tiers else "; no failover across tiers"
    return f"threshold {rule.threshold:.2f}{share}; each tier by {rule.tier_strategy}{across}"


def dry_view(body: Mapping[str, Any], rid: str) -> dict[str, Any]:
    """The explanation's plan (ordered), the filtered candidates with their reasons, and the sentence."""
    plan = []
    for p in body.get("plan") or []:
        price = p.get("price") or {}
        plan.append({"rank": p.get("rank"), "target": p.get("target"), "model": p.get("model"),
                     "vendor": p.get("vendor"), "simulated": bool(p.get("simulated")),
                     "context": f"{p['context_window']:,}" if p.get("context_window") else "—",
                     "input": f"${price['input_per_m']:,.4g}" if price else "—",
                     "output": f"${price['output_per_m']:,.4g}" if price else "—", "tier": p.get("tier")})
    filtered = [{"target": c.get("target"), "reason": c.get("filtered")}
                for c in body.get("candidates") or [] if not c.get("eligible")]
    tokens = body.get("estimated_input_tokens")
    wanted = body.get("requested_output_tokens")
    return {"requested": body.get("requested"), "policy": body.get("policy"), "strategy": body.get("strategy"),
            "route": body.get("route"), "reason": body.get("reason"), "plan": plan, "filtered": filtered,
            "input_tokens": f"{tokens:,}" if isinstance(tokens, int) else "—",
            "output_tokens": f"{wanted:,}" if isinstance(wanted, int) and wanted else "—", "timeout": body.get("timeout_s"),
            "rid": rid}


def usd(picousd: int | None) -> str:
    if picousd is None:
        return "—"
    value = picousd / 1e12
    return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _bar(share: float) -> int:
    """A bar's width in the SVG's 0-100 user units (a share above 0 is always visible)."""
    return 0 if share <= 0 else max(1, round(100 * share))


def replay_view(s: Mapping[str, Any], label: str, strategy: str, read: int, project: str | None,
                n: int) -> dict[str, Any]:
    """The replay's summary, formatted, with the bars' widths (pure)."""
    actual, replayed = s["actual_spend"], s["replayed_spend"]
    top = max(actual, replayed, 1)
    change = (replayed - actual) / actual if actual else None

    def rows(key: str) -> list[dict[str, Any]]:
        return [{**r, "actual_pct": f"{100 * r['actual_share']:.1f}%", "replayed_pct": f"{100 * r['replayed_share']:.1f}%",
                 "actual_bar": _bar(r["actual_share"]), "replayed_bar": _bar(r["replayed_share"])} for r in s[key]]

    return {
        "label": label, "strategy": strategy, "read": read, "n": n, "project": project or "all projects",
        "requests": s["requests"], "skipped": read - s["requests"], "unroutable": s["unroutable"],
        "actual_spend": usd(actual), "replayed_spend": usd(replayed),
        "actual_spend_pico": actual, "replayed_spend_pico": replayed,
        "actual_spend_bar": _bar(actual / top), "replayed_spend_bar": _bar(replayed / top),
        "change": f"{100 * change:+.1f}%" if change is not None else "—",
        "cheaper": replayed < actual,
        "actual_unpriced": s["actual_unpriced"], "replayed_unpriced": s["replayed_unpriced"],
        "actual_mean": ms(s["actual_mean_ms"]), "actual_p50": ms(s["actual_p50_ms"]),
        "replayed_mean": ms(s["replayed_mean_ms"]), "replayed_p50": ms(s["replayed_p50_ms"]),
        "sources": [{"source": src, "requests": count, "pct": f"{100 * share:.0f}%"}
                    for src, count, share in s["latency_sources"]],
        "models": rows("models"), "vendors": rows("vendors"),
        "tiers": s["tiers"], "unscored": s["unscored"],
        "strong_share": f"{100 * s['strong_share']:.1f}%" if s["strong_share"] is not None else "—",
    }
