"""Creating and changing definitions: one implementation for the admin API and the CLI.

Each operation validates a JSON-shaped body (unknown or malformed fields raise
:class:`DefinitionError` naming the field), checks that what it refers to
exists, and writes through the store (which bumps the definitions' version, so
running gateways reload within a poll interval).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from interlock.core.regions import BUILTIN_REGIONS, BadRegionName, RegionTable, parse_names
from interlock.governance.auth import digest, new_key, visible_prefix
from interlock.governance.model import (
    BUDGET_SCOPES,
    DEFAULT_THRESHOLDS,
    EACH,
    LIMIT_SCOPES,
    LOG_LEVELS,
    MAX_EXPIRY_S,
    MODES,
    ApiKey,
    Budget,
    DefinitionError,
    Limit,
    Project,
    check_names,
    check_project_id,
    check_thresholds,
    parse_duration,
    parse_period,
    parse_usd,
    positive_int,
)
from interlock.governance.store import GovStore, Statement, budget_row, insert, limit_row
from interlock.guardrails.settings import GuardrailConfig, ProjectGuardrails, check_project, parse_project

PROJECT_FIELDS = ("id", "name", "log_level", "allowed_models", "allowed_vendors", "zero_data_retention",
                  "guardrails", "regions")
#: No floor and no per-project entries (tests, tools); the admin API and the CLI pass the config's.
NO_GUARDRAILS = GuardrailConfig()
KEY_FIELDS = ("project", "name", "projects", "allowed_models", "expires_in", "expires_at", "budget", "limits",
              "regions")
BUDGET_FIELDS = ("scope", "subject", "amount_usd", "period", "mode", "thresholds")
LIMIT_FIELDS = ("scope", "subject", "rpm", "tpm", "concurrent", "tool_calls_per_minute")
MAX_OVERLAP_S = 30 * 86400


class Missing(LookupError):
    """A definition the operation refers to does not exist."""

    def __init__(self, what: str, item_id: str, field_name: str | None = None) -> None:
        super().__init__(f"No {what} with id {item_id!r}.")
        self.message = f"No {what} with id {item_id!r}."
        self.field = field_name


def only(body: Mapping[str, Any], fields: tuple[str, ...], where: str = "") -> None:
    for name in body:
        if name not in fields:
            raise DefinitionError(where + name, f"unknown field {where + name!r}; expected one of: "
                                               f"{', '.join(fields)}")


def new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


def _string(body: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 200):
        raise DefinitionError(name, f"expected a non-empty string of at most 200 characters, got {value!r}")
    return value.strip() if isinstance(value, str) else None


def _flag(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise DefinitionError(name, f"expected true or false, got {value!r}")
    return value


def _log_level(value: Any) -> str | None:
    if value is not None and value not in LOG_LEVELS:
        raise DefinitionError("log_level", f"expected one of {', '.join(LOG_LEVELS)} or null, got {value!r}")
    return value  # type: ignore[no-any-return]


def _guardrails(value: Any, pid: str, config: GuardrailConfig) -> ProjectGuardrails | None:
    """A project's guardrail setting: the config file's rules, and refused when looser than the floor (with
    the project's entry in the config file) - it would not apply, so it is not silently kept."""
    def fail(path: tuple[str, ...], message: str) -> Exception:
        return DefinitionError(".".join(("guardrails", *path)), message)

    found = parse_project(value, fail)
    check_project(config.floor_for(pid), found, fail)
    return None if found.empty else found


def check_regions(value: Any, table: RegionTable, field_name: str = "regions") -> tuple[str, ...]:
    """Region or jurisdiction names the region table knows; ``[]`` (or null) clears them."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise DefinitionError(field_name, f"expected a list of region or jurisdiction names, got {value!r}")
    try:
        return table.check_known(parse_names(value, empty=True))
    except BadRegionName as exc:
        raise DefinitionError(field_name, exc.message) from None


async def create_project(store: GovStore, body: Mapping[str, Any], *,
                         guardrails: GuardrailConfig = NO_GUARDRAILS,
                         regions: RegionTable = BUILTIN_REGIONS) -> Project:
    only(body, PROJECT_FIELDS)
    pid = check_project_id(body.get("id"))
    project = Project(pid, _string(body, "name", pid) or pid, _log_level(body.get("log_level")),
                      check_names(body.get("allowed_models", []), "allowed_models"),
                      check_names(body.get("allowed_vendors", []), "allowed_vendors"), time.time(),
                      _flag(body, "zero_data_retention", False),
                      _guardrails(body.get("guardrails"), pid, guardrails),
                      check_regions(body.get("regions"), regions))
    await store.add_project(project)
    return project


async def update_project(store: GovStore, current: Project, body: Mapping[str, Any], *,
                         guardrails: GuardrailConfig = NO_GUARDRAILS,
                         regions: RegionTable = BUILTIN_REGIONS) -> Project:
    """``guardrails`` replaces the project's whole setting (null or {} clears it); left out, it is kept
    unchecked, so a floor raised since then still wins over it (see ``effective``)."""
    only(body, PROJECT_FIELDS[1:])
    project = Project(
        current.id, _string(body, "name", current.name) or current.name,
        _log_level(body.get("log_level", current.log_level)),
        check_names(body.get("allowed_models", list(current.allowed_models)), "allowed_models"),
        check_names(body.get("allowed_vendors", list(current.allowed_vendors)), "allowed_vendors"),
        current.created_at, _flag(body, "zero_data_retention", current.zero_data_retention),
        _guardrails(body["guardrails"], current.id, guardrails) if "guardrails" in body else current.guardrails,
        check_regions(body["regions"], regions) if "regions" in body else current.regions)
    if not await store.update_project(project):
        raise Missing("project", current.id)
    return project


def _expiry(body: Mapping[str, Any], now: float) -> float | None:
    if body.get("expires_in") is not None and body.get("expires_at") is not None:
        raise DefinitionError("expires_in", "give expires_in or expires_at, not both")
    if body.get("expires_in") is not None:
        value = body["expires_in"]
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not 0 < value <= MAX_EXPIRY_S:
                raise DefinitionError("expires_in", f"expected a positive number of seconds, at most {MAX_EXPIRY_S} "
                                                    f"(100 years), got {value!r}")
            return now + float(value)
        if not isinstance(value, str):
            raise DefinitionError("expires_in", f"expected seconds or a duration such as 30d, got {value!r}")
        seconds = parse_duration(value, "expires_in")
        if seconds > MAX_EXPIRY_S:
            raise DefinitionError("expires_in", f"at most 100 years, got {value!r}")
        return now + seconds
    at = body.get("expires_at")
    if at is None:
        return None
    if isinstance(at, bool) or not isinstance(at, int | float) or not now < at <= now + MAX_EXPIRY_S:
        raise DefinitionError("expires_at", f"expected a future time in epoch seconds, at most 100 years ahead, "
                                            f"got {at!r}")
    return float(at)


def _scope_subject(body: Mapping[str, Any], scope: str | None, subject: str | None,
                   scopes: tuple[str, ...], where: str) -> tuple[str, str]:
    """What a budget or limit applies to: given by the URL, or by the body's ``scope`` and ``subject``."""
    scope = scope or body.get("scope")
    if scope not in scopes:
        raise DefinitionError(where + "scope", f"expected one of {', '.join(scopes)}, got {scope!r}")
    subject = subject if subject is not None else body.get("subject")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 256:
        raise DefinitionError(where + "subject", f"expected the id of the {scope} (a string), got {subject!r}")
    return scope, subject


def budget_from(body: Mapping[str, Any], *, scope: str | None = None, subject: str | None = None,
                where: str = "") -> Budget:
    only(body, BUDGET_FIELDS if scope is None else BUDGET_FIELDS[2:], where)
    scope, subject = _scope_subject(body, scope, subject, BUDGET_SCOPES, where)
    if subject == EACH and scope != "end_user":
        raise DefinitionError(where + "subject", "'*' (every end user separately) is for end_user budgets only")
    if "amount_usd" not in body:
        raise DefinitionError(where + "amount_usd", "required: the budget's amount in USD")
    mode = body.get("mode", "hard")
    if mode not in MODES:
        raise DefinitionError(where + "mode", f"expected hard or soft, got {mode!r}")
    thresholds = check_thresholds(body["thresholds"], where + "thresholds") if "thresholds" in body \
        else DEFAULT_THRESHOLDS
    return Budget(new_id("bud"), scope, subject.strip(), parse_usd(body["amount_usd"], where + "amount_usd"),
                  parse_period(body.get("period", "monthly"), where + "period"), mode, thresholds, time.time())


def limit_from(body: Mapping[str, Any], *, scope: str | None = None, subject: str | None = None,
               where: str = "") -> Limit:
    only(body, LIMIT_FIELDS if scope is None else LIMIT_FIELDS[2:], where)
    scope, subject = _scope_subject(body, scope, subject, LIMIT_SCOPES, where)
    lim = Limit(new_id("lim"), scope, subject.strip(), positive_int(body.get("rpm"), where + "rpm"),
                positive_int(body.get("tpm"), where + "tpm"),
                positive_int(body.get("concurrent"), where + "concurrent"), time.time(),
                positive_int(body.get("tool_calls_per_minute"), where + "tool_calls_per_minute"))
    if lim.tool_calls_per_minute is not None and lim.scope not in ("key", "project"):
        raise DefinitionError(where + "tool_calls_per_minute", "applies to a key or a project (tool calls are "
                              "counted per caller, and a model has none)")
    if lim.rpm is None and lim.tpm is None and lim.concurrent is None and lim.tool_calls_per_minute is None:
        raise DefinitionError(where + "rpm", "give at least one of rpm, tpm, concurrent, tool_calls_per_minute")
    return lim


async def _check_subject(store: GovStore, scope: str, subject: str) -> None:
    if scope == "project" and not await store.fetch("SELECT 1 FROM gov_projects WHERE id = ?", (subject,)):
        raise Missing("project", subject, "subject")
    if scope == "key" and not await store.fetch("SELECT 1 FROM gov_keys WHERE id = ?", (subject,)):
        raise Missing("key", subject, "subject")


async def create_key(store: GovStore, secret: bytes, body: Mapping[str, Any], *,
                     regions: RegionTable = BUILTIN_REGIONS) -> tuple[ApiKey, str, list[Any]]:
    """A new key (its plaintext returned once) with its optional budget and limits; its ``regions`` may only
    narrow its project's (both apply on every request)."""
    only(body, KEY_FIELDS)
    pid = body.get("project")
    if not isinstance(pid, str):
        raise DefinitionError("project", f"required: the id of the project the key belongs to, got {pid!r}")
    projects = check_names(body.get("projects", []), "projects")
    for p in (pid, *projects):
        await _check_subject(store, "project", p)
    key_regions = check_regions(body.get("regions"), regions)
    if key_regions:
        rows = await store.fetch("SELECT regions FROM gov_projects WHERE id = ?", (pid,))
        allowed = frozenset(orjson.loads(rows[0][0] or "[]"))
        wider = regions.narrower(allowed, key_regions) if allowed else []
        if wider:
            raise DefinitionError("regions", f"a key may only narrow its project's regions "
                                             f"({', '.join(sorted(allowed))}); {', '.join(wider)} is outside them")
    now = time.time()
    plaintext = new_key()
    key = ApiKey(new_id("key"), pid, _string(body, "name") or "", visible_prefix(plaintext),
                 digest(secret, plaintext), tuple(p for p in projects if p != pid),
                 check_names(body.get("allowed_models", []), "allowed_models"), now, _expiry(body, now),
                 regions=key_regions)
    extra: list[Statement] = []
    attached: list[Any] = []
    if body.get("budget") is not None:
        if not isinstance(body["budget"], dict):
            raise DefinitionError("budget", "expected an object: {amount_usd, period, mode}")
        budget = budget_from(body["budget"], scope="key", subject=key.id, where="budget.")
        extra.append(insert("gov_budgets", "id, scope, subject, amount_micro, period, mode, thresholds, created_at",
                            budget_row(budget)))
        attached.append(budget)
    if body.get("limits") is not None:
        if not isinstance(body["limits"], dict):
            raise DefinitionError("limits", "expected an object: {rpm, tpm, concurrent, tool_calls_per_minute}")
        lim = limit_from(body["limits"], scope="key", subject=key.id, where="limits.")
        extra.append(insert("gov_limits", "id, scope, subject, rpm, tpm, concurrent, created_at, "
                            "tool_calls_per_minute", limit_row(lim)))
        attached.append(lim)
    await store.add_key(key, extra)
    return key, plaintext, attached


async def rotate_key(store: GovStore, secret: bytes, old: ApiKey, overlap_s: float) -> tuple[ApiKey, str]:
    """A new key for the same project and settings; the old one keeps working for ``overlap_s`` seconds.

    Budgets and limits stay on the first key of the rotation chain and apply to
    every key in it (``Definitions.key_root``), so a rotation neither resets nor
    doubles them, and the old key is held to them during the overlap too.
    """
    if old.revoked_at is not None:
        raise DefinitionError("id", f"key {old.id} is revoked; create a new key instead")
    if not 0 <= overlap_s <= MAX_OVERLAP_S:
        raise DefinitionError("overlap_seconds", f"expected 0 to {MAX_OVERLAP_S} seconds, got {overlap_s!r}")
    now = time.time()
    plaintext = new_key()
    new = ApiKey(new_id("key"), old.project, old.name, visible_prefix(plaintext), digest(secret, plaintext),
                 old.projects, old.allowed_models, now, old.expires_at, regions=old.regions)
    await store.rotate_key(old, new, now + overlap_s)
    return new, plaintext


async def create_budget(store: GovStore, body: Mapping[str, Any]) -> Budget:
    budget = budget_from(body)
    await _check_subject(store, budget.scope, budget.subject)
    await store.add_budget(budget)
    return budget


async def create_limit(store: GovStore, body: Mapping[str, Any]) -> Limit:
    lim = limit_from(body)
    await _check_subject(store, lim.scope, lim.subject)
    await store.add_limit(lim)
    return lim


async def update_budget(store: GovStore, current: Budget, body: Mapping[str, Any]) -> Budget:
    """Changes ``amount_usd``, ``period``, ``mode`` or ``thresholds``; what a budget applies to cannot change
    (its spend is counted under its id: delete it and create another)."""
    only(body, BUDGET_FIELDS[2:])
    merged = {"amount_usd": current.to_json()["amount_usd"], "period": current.period, "mode": current.mode,
              "thresholds": list(current.thresholds), **body}
    found = budget_from(merged, scope=current.scope, subject=current.subject)
    budget = replace(found, id=current.id, created_at=current.created_at)
    if not await store.update_budget(budget):
        raise Missing("budget", current.id)
    return budget


async def update_limit(store: GovStore, current: Limit, body: Mapping[str, Any]) -> Limit:
    """Changes ``rpm``, ``tpm``, ``concurrent`` or ``tool_calls_per_minute`` (null removes one)."""
    only(body, LIMIT_FIELDS[2:])
    merged = {"rpm": current.rpm, "tpm": current.tpm, "concurrent": current.concurrent,
              "tool_calls_per_minute": current.tool_calls_per_minute, **body}
    found = limit_from(merged, scope=current.scope, subject=current.subject)
    lim = replace(found, id=current.id, created_at=current.created_at)
    if not await store.update_limit(lim):
        raise Missing("limit", current.id)
    return lim
