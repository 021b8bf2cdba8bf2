"""The routing engine: a request in, an ordered list of targets and its explanation out.

    names (model + ``models`` fallbacks) -> planner candidates -> filters (with reasons)
    -> strategy ranking per model group -> ``provider.order`` / ``allow_fallbacks``
    -> the order dispatch tries, and a :class:`RoutingTrace`

It never calls a vendor, so ``POST /v1/route/explain`` runs exactly this and
shows what a real request would do. The per-name resolution is cached by the
planner; what remains per request is the token estimate, the filters and the
sort (its cost: ``bench/routing.py``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from interlock.catalog.tokens import requested_output, text_upper_bound
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, InvalidRequest, ModelNotFound, NoRouteAvailable
from interlock.core.plan import Plan, Target
from interlock.core.policy import DEFAULT_POLICY, Filters, Policy
from interlock.core.regions import BUILTIN_REGIONS, RegionRule, RegionTable
from interlock.core.trace import (
    Candidate,
    DifficultyDecision,
    RoutingTrace,
    decision_sentence,
    skipped_notes,
    strategy_phrase,
)
from interlock.routing import difficulty, residency
from interlock.routing.affinity import PrefixAffinity
from interlock.routing.circuit import Circuits
from interlock.routing.explain import GenerationRecord
from interlock.routing.overrides import (
    NO_PREFS,
    Overrides,
    parse_overrides,
    region_list,
    strip_routing_fields,
)
from interlock.routing.planner import Planner
from interlock.routing.shared import SharedStats
from interlock.routing.stats import LiveStats
from interlock.routing.strategies import (
    Needs,
    filter_reason,
    output_reason,
    rank,
    request_params,
    required_capabilities,
)
from interlock.routing.tokens import TokenMemo
from interlock.routing.trace import TraceLog

_LAYOUT_LIMIT = 4096
DEFAULT_FILTERS = Filters()


@dataclass(frozen=True, slots=True)
class _Layout:
    plans: list[tuple[int, Plan]]
    unresolved: dict[str, str]
    pairs: tuple[tuple[Target, int], ...]
    policies: list[Policy]
    strategies: list[str]
    #: The strategy that ranks each group's targets (a difficulty policy's tier_strategy; else its strategy).
    ranking: list[str]
    #: Any policy of the difficulty strategy.
    tiered: bool
    #: Any policy with filters of its own (the fast filter path does not apply).
    policy_filters: bool
    #: The names that could not be resolved, as a clause of the route reason ("" when none).
    ignored: str = ""
    #: When ``tiered``, each pair with its tier under a difficulty policy ("weak" or "strong"; None in other
    #: groups): (target, group, tier).
    tiered_pairs: tuple[tuple[Target, int, str | None], ...] = ()


class _OverridesView:
    """The request's routing overrides for the trace, rendered only when the trace is read."""

    __slots__ = ("capabilities", "overrides", "unresolved")

    def __init__(self, overrides: Overrides, unresolved: dict[str, str], capabilities: frozenset[str]) -> None:
        self.overrides = overrides
        self.unresolved = unresolved
        self.capabilities = capabilities

    def __bool__(self) -> bool:
        """Whether there is anything to render (the request log skips ``to_json`` when not)."""
        o = self.overrides
        return (o.provider is not NO_PREFS or len(o.names) > 1 or o.suffix_sorts != (None,)
                or bool(self.unresolved) or bool(self.capabilities))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        overrides = self.overrides
        # The common case (no provider preferences) skips rendering the defaults only to find them empty.
        provider = overrides.provider.to_json() if overrides.provider is not NO_PREFS else None
        if provider:
            out["provider"] = provider
        if len(overrides.names) > 1:
            out["models"] = list(overrides.names[1:])
        sorts = [s for s in overrides.suffix_sorts if s]
        if sorts:
            out["suffix_sort"] = sorts
        if self.unresolved:
            out["unresolved_models"] = self.unresolved
        if self.capabilities:
            out["required_capabilities"] = sorted(self.capabilities)
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

#: The caller's name for the canonical max tokens, per inbound API (chat: the field it sent).
_OUTPUT_PARAM = {"anthropic.messages": "max_tokens", "openai.responses": "max_output_tokens"}


def _short(message: str) -> str:
    """A resolution error's first sentence, for the route reason (the full text is in the trace)."""
    return message.split(". ", 1)[0].rstrip(".")


#: Filter reasons that depend only on the request: when they exclude everything, the caller must change it.
_REQUEST_REASONS = ("context window", "no ", "does not support", "max output")


class RoutingEngine:
    def __init__(
        self,
        planner: Planner,
        *,
        circuits: Circuits | None = None,
        stats: LiveStats | None = None,
        rng: Callable[[], float] = random.random,
        trace_limit: int = 10_000,
        affinity: PrefixAffinity | None = None,
    ) -> None:
        self.planner = planner
        self.circuits = circuits or Circuits()
        self.stats = stats or LiveStats()
        self.rng = rng
        self.traces = TraceLog(trace_limit)
        self.tokens = TokenMemo()
        #: Prefix affinity (routing/affinity.py): a reordering step after the strategy; None when off.
        self.affinity = affinity
        self._layouts: dict[tuple[str, ...], _Layout] = {}
        #: Replica-wide statistics through Redis (routing/shared.py), started with the first request.
        self.shared: SharedStats | None = None
        #: Region -> jurisdiction, for data residency (the config's ``regions``; set by the app).
        self.regions: RegionTable = BUILTIN_REGIONS

    # ------------------------------------------------------------------ decide

    def decide(self, request: Mapping[str, Any], *, exact: bool = False,
               output_param: str | None = None, project: str | None = None,
               input_tokens: int | None = None, regions: tuple[RegionRule, ...] = (),
               header: Callable[[str], str | None] | None = None,
               difficulty_score: float | None = None) -> tuple[RoutingTrace, Plan]:
        """The routing decision for a validated chat request; raises 400/404/503 as the caller should see.

        ``exact`` always counts the prompt's tokens (explain); otherwise they are counted only when a
        strategy prices the request or a context window could be too small for a cheap upper bound.
        ``output_param`` is the caller's name for the canonical max tokens (``max_output_tokens`` on
        the Responses API), for the 400 when no target allows that many. ``project`` scopes prefix
        affinity (the caller's project). ``input_tokens`` replaces the prompt's count (a recorded request
        replayed by the console: its usage says how long the prompt was). ``regions`` are the data-residency
        rules (``routing/residency.py``) every route must satisfy. ``header`` reads the request's headers
        (``x-interlock-route-difficulty``, read only for a difficulty policy); ``difficulty_score`` is a recorded
        score that replaces the scorer's (a replay).
        """
        overrides = parse_overrides(request)
        layout = self._layout(overrides.names)
        plans = layout.plans
        primary = plans[0][1]
        policy = primary.policy or DEFAULT_POLICY
        prefs = overrides.provider
        if layout.tiered:
            candidates = [Candidate(target, group, None, None, None, tier)
                          for target, group, tier in layout.tiered_pairs]
        else:
            candidates = [Candidate(target, group) for target, group in layout.pairs]
        policies = layout.policies
        if prefs.sort is None and not any(overrides.suffix_sorts):
            strategies = layout.ranking
        else:
            strategies = [prefs.sort or overrides.suffix_sorts[group] or layout.ranking[group]
                          for group in range(len(layout.ranking))]
        output = requested_output(request)
        priced = "cost" in strategies or "balanced" in strategies
        if input_tokens is None:
            input_tokens, exact = self._input_tokens(request, candidates, output, exact, priced)
        else:
            exact = True
        needs = Needs(
            capabilities=required_capabilities(request),
            input_tokens=input_tokens,
            output_tokens=output,
            params=request_params(request) if prefs.require_parameters else frozenset(),
        )
        circuits = self.circuits
        if prefs is NO_PREFS and not layout.policy_filters:
            # The common case, inlined: capabilities, context window, circuit.
            wanted = needs.capabilities
            need = needs.context_needed
            breakers = circuits.active()
            for c in candidates:
                t = c.target
                caps = t.capabilities
                window = t.context_window
                if wanted and caps is not None and not wanted <= caps:
                    c.reason = "no " + ", ".join(sorted(wanted - caps)) + " support"
                elif window is not None and need > window:
                    c.reason = f"context window {window:,} < {need:,} tokens needed"
                elif output and t.max_output is not None and output > t.max_output:
                    c.reason = output_reason(t.max_output, output)
                elif breakers and not circuits.available(t.key):
                    c.reason = f"circuit open (probe in {circuits.retry_in(t.key):.0f}s)"
        else:
            for c in candidates:
                c.reason = filter_reason(c, needs, policies[c.group], prefs, circuits)
        if regions:
            residency.screen(candidates, regions, self.regions)

        decision = None
        if layout.tiered:
            order, decision, in_tier = self._tiered(layout, candidates, strategies, needs, request,
                                                    header(difficulty.HEADER) if header is not None else None,
                                                    difficulty_score)
        elif len(plans) == 1:
            eligible = [c for c in candidates if c.reason is None]
            order = rank(eligible, strategies[0], policies[0], needs, self.stats, self.rng)
        else:
            order = []
            for group, _ in plans:
                eligible = [c for c in candidates if c.group == group and c.reason is None]
                order.extend(rank(eligible, strategies[group], policies[group], needs, self.stats, self.rng))
        prefix = affine = None
        # One candidate in all (a model with one route): nothing to prefer, no fingerprint to compute.
        if self.affinity is not None and order and len(candidates) > 1:
            prefix = self.affinity.key(request, project)
            # An explicit provider.order is the caller's own ranking: affinity does not reorder it.
            if prefix is not None and not prefs.order:
                if decision is None:
                    order, affine = self.affinity.prefer(prefix, order)
                elif in_tier:  # the difficulty tier is the decision: affinity reorders only within it
                    head, affine = self.affinity.prefer(prefix, order[:in_tier])
                    order = head + order[in_tier:]
        if prefs.order:
            position = {slug: i for i, slug in enumerate(prefs.order)}
            listed = sorted((c for c in order if c.target.slug in position),
                            key=lambda c: position[c.target.slug])
            rest = [c for c in order if c.target.slug not in position]
            order = listed + rest
            if not prefs.allow_fallbacks:
                for c in rest:
                    c.reason = "not in provider.order (allow_fallbacks is false)"
                order = listed
        elif not prefs.allow_fallbacks and len(order) > 1:
            for c in order[1:]:
                c.reason = "provider.allow_fallbacks is false"
            order = order[:1]

        skipped = [c for c in candidates if c.reason is not None]
        if not order:
            raise residency.refusal(" or ".join(overrides.names), skipped, regions) or self._no_route(
                overrides, skipped, request, output_param)
        strategy = "difficulty" if layout.strategies[0] == "difficulty" else strategies[0]
        if decision is not None and strategy == "difficulty":
            reason = difficulty.sentence(decision, strategy_phrase(strategies[0]), in_tier, len(order)) + \
                skipped_notes(skipped) + layout.ignored
        else:
            reason = decision_sentence(strategies[0], len(order), skipped, len(plans)) + layout.ignored
        if affine is not None and affine.moved:
            reason = f"{affine.sentence()}; otherwise {reason}"
        trace = RoutingTrace(
            requested=str(request["model"]),
            names=overrides.names,
            policy=primary.policy.name if primary.policy is not None else None,
            strategy=strategy,
            estimated_input_tokens=needs.input_tokens if exact else None,
            requested_output_tokens=needs.output_tokens,
            candidates=candidates,
            order=tuple(c.target for c in order),
            reason=reason,
            overrides=_OverridesView(overrides, layout.unresolved, needs.capabilities),
            retry=policy.retry,
            timeout_s=policy.timeout_s,
            prefix=prefix,
            affinity=affine,
            difficulty=decision,
        )
        return trace, primary

    def _tiered(self, layout: _Layout, candidates: list[Candidate], strategies: list[str], needs: Needs,
                request: Mapping[str, Any], header: str | None,
                score: float | None) -> tuple[list[Candidate], DifficultyDecision | None, int]:
        """Rank each group; a difficulty policy's group by tier (``routing/difficulty.py``). Returns the order,
        the difficulty decision (of the first difficulty group: one score per request) and where in the order
        the first difficulty group's chosen tier ends."""
        order: list[Candidate] = []
        decision: DifficultyDecision | None = None
        in_tier = 0
        stats, rng = self.stats, self.rng
        for group, _ in layout.plans:
            policy = layout.policies[group]
            eligible = [c for c in candidates if c.group == group and c.reason is None]
            strategy = strategies[group]
            rule = policy.difficulty
            if rule is None:
                order.extend(rank(eligible, strategy, policy, needs, stats, rng))
                continue
            first = decision is None
            if decision is None:
                decision = mine = difficulty.decide(rule, request, header, score)
            else:  # another difficulty policy among the fallbacks: the same score, its own threshold
                mine = difficulty.decide(rule, request, header, decision.score)
            chosen, other = difficulty.split(eligible, mine, rule)
            chosen = rank(chosen, strategy, policy, needs, stats, rng)
            if first:
                in_tier = len(order) + len(chosen)
            order.extend(chosen)
            if other:
                order.extend(rank(other, strategy, policy, needs, stats, rng))
        return order, decision, in_tier

    def _input_tokens(self, request: Mapping[str, Any], candidates: list[Candidate], output: int, exact: bool,
                      priced: bool) -> tuple[int, bool]:
        if not exact and not priced:
            bound = text_upper_bound(request)
            if bound is not None:
                windows = [c.target.context_window for c in candidates if c.target.context_window]
                if not windows or bound + output <= min(windows):
                    return bound, False
        return self.tokens.count(request, candidates[0].target.model), True

    def replan(self, planner: Planner) -> None:
        """A config reload: the planner takes ``planner``'s names, and the layouts planned from the old ones go
        (in one synchronous step; circuits and live statistics stay, by route)."""
        self.planner.replace(planner)
        self._layouts = {}

    def _layout(self, names: tuple[str, ...]) -> _Layout:
        """Plans and deduplicated candidates of a name list: a pure function of the names, cached."""
        layout = self._layouts.get(names)
        if layout is not None:
            return layout
        plans: list[tuple[int, Plan]] = []
        unresolved: dict[str, str] = {}
        first: GatewayError | None = None
        for group, name in enumerate(names):
            try:
                plans.append((len(plans), self.planner.plan(name)))
            except GatewayError as err:
                # An unknown primary with a known fallback routes to the fallback (the reason says so);
                # any other failure of the primary is the answer.
                if group == 0 and not isinstance(err, ModelNotFound):
                    raise
                first = first or err
                unresolved[name] = err.message
        if not plans:
            assert first is not None
            raise first
        pairs: list[tuple[Target, int]] = []
        seen: set[str] = set()
        for group, plan in plans:
            for target in plan.targets:
                if target.key not in seen:
                    seen.add(target.key)
                    pairs.append((target, group))
        policies = [plan.policy or DEFAULT_POLICY for _, plan in plans]
        strategies = [p.strategy for p in policies]
        tiered = any(p.difficulty is not None for p in policies)
        tiered_pairs = tuple((target, group, plans[group][1].tiers.get(target.key, "weak")
                              if policies[group].difficulty is not None else None)
                             for target, group in pairs) if tiered else ()
        layout = _Layout(plans, unresolved, tuple(pairs), policies, strategies,
                         [p.difficulty.tier_strategy if p.difficulty is not None else p.strategy for p in policies],
                         tiered, any(p.filters != DEFAULT_FILTERS for p in policies),
                         "".join(f"; '{name}' ignored: {_short(why)}" for name, why in unresolved.items()), tiered_pairs)
        if len(self._layouts) >= _LAYOUT_LIMIT:
            self._layouts.clear()
        self._layouts[names] = layout
        return layout

    def _no_route(self, overrides: Overrides, skipped: list[Candidate], request: Mapping[str, Any],
                  output_param: str | None) -> GatewayError:
        reasons = "; ".join(f"{c.target.key}: {c.reason}" for c in skipped[:6])
        if len(skipped) > 6:
            reasons += f"; and {len(skipped) - 6} more"
        names = "', '".join(overrides.names)
        if skipped and all(c.reason is not None and c.reason.startswith("max output") for c in skipped):
            # As the vendor would answer: the parameter and the limit (the most any target allows).
            param = output_param or ("max_completion_tokens" if "max_completion_tokens" in request else "max_tokens")
            most = max(c.target.max_output or 0 for c in skipped)
            return InvalidRequest(f"'{param}' is too large: {requested_output(request)}. '{names}' supports at most "
                                  f"{most} output tokens ({reasons}).", param=param, code="invalid_value")
        if skipped and all(c.reason == "does not support logprobs" for c in skipped):
            return InvalidRequest(f"No target for '{names}' returns logprobs, and the request sets "
                                  f"provider.require_parameters: true ({reasons}).", param="logprobs",
                                  code="unsupported_parameter")
        if skipped and all(c.reason is not None and c.reason.startswith(_REQUEST_REASONS) for c in skipped):
            code = "context_length_exceeded" if all(
                c.reason is not None and c.reason.startswith("context window") for c in skipped) else "no_capable_route"
            return InvalidRequest(f"No target for '{names}' can serve this request: {reasons}.", param="model",
                                  code=code)
        headers: dict[str, str] = {}
        waits = [self.circuits.retry_in(c.target.key) for c in skipped
                 if c.reason is not None and c.reason.startswith("circuit open")]
        if waits and len(waits) == len(skipped):
            headers["retry-after"] = str(max(1, int(min(waits) + 0.999)))
        return NoRouteAvailable(f"No target for '{names}' is available for this request: {reasons}.",
                                param="model", headers=headers)

    # ------------------------------------------------------------------ pipeline hooks

    def route(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Decide for a live request: fills the context, returns the request without routing fields."""
        principal = ctx.principal
        trace, plan = self.decide(request, output_param=_OUTPUT_PARAM.get(ctx.inbound),
                                  project=principal.project if principal is not None else None,
                                  regions=self.region_rules(ctx, request),
                                  header=ctx.exchange.header if ctx.exchange is not None else None)
        trace.attempts = ctx.attempts
        ctx.plan = plan
        ctx.routing = trace
        return strip_routing_fields(request)

    def region_rules(self, ctx: RequestContext, request: Mapping[str, Any]) -> tuple[RegionRule, ...]:
        """The caller's region rules and the request's narrowing of them (a 403 if it would widen them)."""
        principal = ctx.principal
        granted = principal.regions if principal is not None else ()
        provider = request.get("provider")
        body = provider.get("regions") if isinstance(provider, dict) else None
        header = ctx.exchange.header(residency.HEADER) if ctx.exchange is not None else None
        if body is None and header is None:
            return granted
        return residency.request_rules(self.regions, granted, region_list(body, "provider.regions") if body else (),
                                       header)

    def observe(self, ctx: RequestContext) -> None:
        """After the response: feed live statistics and keep the trace for ``/v1/generation``.

        Called from the pipeline's ``finally``; only counters and one dict insert.
        """
        if self.shared is not None:
            self.shared.start()
        trace = ctx.routing
        if trace is None:
            return
        answered = next((a for a in reversed(ctx.attempts) if a.outcome == "answered"), None)
        # The dispatcher leaves the success of the answering attempt for this one update.
        if answered is not None and ctx.first_byte is None:
            self.stats.attempt(answered.target, ok=True)
        elif answered is not None and ctx.first_byte is not None:
            usage = ctx.usage
            now = time.perf_counter()
            generation = now - ctx.first_byte if ctx.stream else 0.0
            self.stats.answered(
                answered.target,
                ttft_s=ctx.first_byte - answered.started,
                output_tokens=usage.output_tokens if usage is not None and not usage.estimated else 0,
                generation_s=generation,
                prompt_tokens=usage.prompt_tokens if usage is not None else 0,
                cached_tokens=usage.cache_read_tokens if usage is not None else 0,
                count=True,
            )
        if trace.prefix is not None and self.affinity is not None:
            self.affinity.observe(trace.prefix, [a.target for a in ctx.attempts if a.outcome == "failed"],
                                  (answered.target, answered.vendor) if answered is not None else None)
        self.traces.put(ctx.id, GenerationRecord(ctx, trace))

    def ordered(self, plan: Plan) -> RoutingTrace:
        """A trace for a context routed without a request (the planner's order as is)."""
        cands = [Candidate(t, 0) for t in plan.targets]
        return RoutingTrace(plan.requested, (plan.requested,), None, "priority", 0, 0, cands,
                            tuple(plan.targets), decision_sentence("priority", len(plan.targets), [], 1),
                            retry=DEFAULT_POLICY.retry, timeout_s=DEFAULT_POLICY.timeout_s)

