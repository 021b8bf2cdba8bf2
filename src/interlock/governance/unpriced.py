"""Routes without a known price, under hard budgets.

A hard budget reserves a request's worst-case cost before it is sent
(``estimate.py``); on a route whose price is unknown that worst case is 0 and
the spend recorded afterwards is 0 too, so the budget would never stop it. So
a caller under a hard budget never reaches an unpriced route: such a target is
skipped with a recorded reason (the routing trace, ``/v1/route/explain``), and
when no priced target remains the request is refused with a 402
``price_unknown`` naming the route. ``governance.unpriced: allow`` turns this
off; a price given in the config (``catalog.models[...].routes.<vendor>.price``)
makes the route priced.

:func:`unpriced_routes` lists, for the start-up banner, every live route that
has no price.
"""

from __future__ import annotations

from collections.abc import Iterable

from interlock.catalog import Catalog
from interlock.core.context import RequestContext
from interlock.core.errors import BudgetExceeded
from interlock.core.plan import SIMULATOR, Plan, Target
from interlock.core.trace import decision_sentence
from interlock.governance.model import Budget

#: The route reason of a target skipped for this (the trace, ``/v1/route/explain``).
REASON = "price unknown, and a hard budget applies (governance.unpriced: refuse)"
_HOW = ("Give the route a price in the config (catalog.models['<lab/model>'].routes.<vendor>.price) or set "
        "governance.unpriced: allow.")


def priced(target: Target) -> bool:
    price = target.price
    return price is not None and price.known


def screen(ctx: RequestContext, budget: Budget) -> None:
    """Drop the unpriced targets of the request's route; a 402 ``price_unknown`` when none is left."""
    trace = ctx.routing
    if trace is not None:
        order = trace.order
        if all(priced(t) for t in order):
            return
        keep = tuple(t for t in order if priced(t))
        dropped = {t.key for t in order if not priced(t)}
        for c in trace.candidates:
            if c.target.key in dropped and c.reason is None:
                c.reason = REASON
        if keep:
            trace.order = keep
            skipped = [c for c in trace.candidates if c.reason is not None]
            unresolved = getattr(trace.overrides, "unresolved", None) or {}
            trace.reason = decision_sentence(trace.strategy, len(keep), skipped,
                                             max(1, len(trace.names) - len(unresolved)))
            return
        raise _refusal(sorted(dropped), budget)
    plan = ctx.plan
    if plan is None or all(priced(t) for t in plan.targets):
        return
    targets = tuple(t for t in plan.targets if priced(t))
    if not targets:
        raise _refusal([t.key for t in plan.targets], budget)
    ctx.plan = Plan(plan.requested, targets, plan.explanation, plan.policy)


def _refusal(routes: list[str], budget: Budget) -> BudgetExceeded:
    names = ", ".join(f"'{r}'" for r in routes[:5]) + (f" and {len(routes) - 5} more" if len(routes) > 5 else "")
    which = "route" if len(routes) == 1 else "routes"
    return BudgetExceeded(
        f"The price of the {which} {names} is unknown, and the {budget.describe()} is a hard budget: interlock "
        f"cannot bound what this request costs, so it was not sent. {_HOW}",
        param="model", code="price_unknown")


def unpriced_routes(catalog: Catalog, live: Iterable[str]) -> tuple[list[str], list[str]]:
    """(catalog routes on live vendors without a price, live vendors whose other models pass through unpriced).

    Every live vendor passes a model the catalog does not list through by name, at no known price; the
    simulator serves catalog models only, priced as their reference vendor.
    """
    vendors = [v for v in live if v != SIMULATOR]
    on = set(vendors)
    routes = sorted(f"{r.vendor}/{r.vendor_model_id}" for m in catalog.models for r in m.routes
                    if r.vendor in on and (r.price is None or not r.price.known))
    return routes, vendors
