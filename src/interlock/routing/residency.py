"""Data residency in routing: the region rules of a request, and the routes they leave.

A project and a key may each carry regions (``Principal.regions``); a request may
narrow them with ``provider.regions`` or the ``x-interlock-regions`` header, never
widen them. Every rule must admit a route (``RegionTable.admits``); a route
filtered out gets a reason naming its regions and the rule, and when no route is
left for that reason alone the caller gets a 403 ``region_not_allowed``. Failover
walks only the routes left, so it never leaves the allowed regions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from interlock.core.errors import GatewayError, InvalidRequest, PermissionDenied
from interlock.core.regions import BadRegionName, RegionRule, RegionTable, route_label
from interlock.core.trace import Candidate
from interlock.routing.overrides import region_list
from interlock.routing.planner import Planner

REASON = "region: "
HEADER = "x-interlock-regions"


def request_rules(table: RegionTable, granted: tuple[RegionRule, ...], body_regions: tuple[str, ...],
                  header: str | None) -> tuple[RegionRule, ...]:
    """The rules routing applies: the caller's, plus the request's own when it narrows them."""
    param = "provider.regions"
    wanted = body_regions
    if header is not None and header.strip():
        from_header = region_list(header, HEADER)
        if wanted and set(from_header) != set(wanted):
            raise InvalidRequest(f"{HEADER} and provider.regions disagree; send one of them.", param=HEADER,
                                 code="invalid_value")
        wanted, param = from_header, (param if wanted else HEADER)
    if not wanted:
        return granted
    try:
        table.check_known(wanted)
    except BadRegionName as exc:
        raise InvalidRequest(f"Invalid '{param}': {exc.message}.", param=param, code="invalid_value") from None
    allowed = frozenset(wanted)
    for rule in granted:
        wider = table.narrower(rule.allowed, wanted)
        if wider:
            raise PermissionDenied(f"The request asks for {', '.join(wider)}, outside {rule.who} regions "
                                   f"{rule.text()}; a request may only narrow them.", param=param,
                                   code="region_not_allowed")
    return (*granted, RegionRule("the request's", allowed))


def screen(candidates: Sequence[Candidate], rules: tuple[RegionRule, ...], table: RegionTable) -> None:
    """Filter out, with a reason, every still-eligible candidate some rule does not admit."""
    for c in candidates:
        if c.reason is not None:
            continue
        regions = c.target.vendor.regions
        for rule in rules:
            if not table.admits(rule.allowed, regions):
                c.reason = f"{REASON}{route_label(c.target.vendor_id, regions)} not in {rule.who} regions {rule.text()}"
                break


def refusal(names: str, skipped: Sequence[Candidate], rules: tuple[RegionRule, ...]) -> GatewayError | None:
    """The 403 when the region rules alone left no route (None when something else did too)."""
    if not rules or not skipped or not all(c.reason is not None and c.reason.startswith(REASON) for c in skipped):
        return None
    where = "; ".join(f"{rule.who} regions {rule.text()}" for rule in rules)
    listed = ", ".join(f"{c.target.key} ({route_label(c.target.vendor_id, c.target.vendor.regions)})"
                       for c in skipped[:6])
    more = f" and {len(skipped) - 6} more" if len(skipped) > 6 else ""
    return PermissionDenied(f"No route for '{names}' runs in the allowed regions ({where}): {listed}{more}.",
                            param="model", code="region_not_allowed")


def unreachable(planner: Planner, projects: Mapping[str, tuple[str, ...]], table: RegionTable) -> list[str]:
    """For each routing policy and each project with regions: a line when no target of the policy runs in
    the project's regions (every request of that project to the policy would be refused)."""
    found: list[str] = []
    for name in sorted(planner.policies):
        try:
            targets = planner.plan(name).targets
        except GatewayError as err:
            found.append(f"policy {name}: no target can be served here ({err.message})")
            continue
        for pid, regions in sorted(projects.items()):
            if not regions:
                continue
            allowed = frozenset(regions)
            if not any(table.admits(allowed, t.vendor.regions) for t in targets):
                where = ", ".join(f"{t.key} ({route_label(t.vendor_id, t.vendor.regions)})" for t in targets[:6])
                found.append(f"policy {name}: no target runs in project {pid}'s regions "
                             f"{', '.join(sorted(allowed))}: {where}")
    return found
