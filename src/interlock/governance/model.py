"""Governance definitions: projects, API keys, budgets and rate limits, and the parsing of their values.

Definitions are plain frozen records, loaded from the store into an immutable
:class:`Definitions` snapshot that the hot path reads without locks: a reload
builds a new snapshot and swaps one reference. Parsing lives here (not in the
admin API or the CLI) so that ``--budget 10/month`` on the command line and
``{"amount_usd": 10, "period": "monthly"}`` over HTTP are checked by the same
code and fail with the same messages.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from interlock.guardrails.settings import ProjectGuardrails

#: Budget amounts are kept in micro-USD; live counters count nano-USD (integers below 2**53 in Redis's Lua).
MICRO_PER_USD = 1_000_000
NANO_PER_MICRO = 1000
PERIODS = ("daily", "weekly", "monthly", "lifetime")
MODES = ("hard", "soft")
BUDGET_SCOPES = ("project", "key", "tag", "end_user")
LIMIT_SCOPES = ("key", "project", "model")
LOG_LEVELS = ("off", "metadata", "full")
DEFAULT_THRESHOLDS = (50, 80, 90)
#: The largest rate or concurrency limit: an exact integer in Redis's Lua (a double) and in a SQL BIGINT.
MAX_COUNT = 2**53 - 1
#: The furthest a key's expiry may be set: 100 years.
MAX_EXPIRY_S = 100 * 365 * 86400
#: ``end_user`` budgets with this subject apply to every end user separately.
EACH = "*"

_PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_PERIOD_WORDS = {"day": "daily", "daily": "daily", "d": "daily", "week": "weekly", "weekly": "weekly", "w": "weekly",
                 "month": "monthly", "monthly": "monthly", "mo": "monthly", "lifetime": "lifetime",
                 "total": "lifetime", "ever": "lifetime"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class DefinitionError(ValueError):
    """A definition value that cannot be accepted; ``field`` names it for the 400 response or the CLI."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    #: Request-log content level for this project's requests; None follows ``logging.level``.
    log_level: str | None = None
    #: Model names or ``lab/*`` / ``vendor/*`` patterns; empty allows every model.
    allowed_models: tuple[str, ...] = ()
    allowed_vendors: tuple[str, ...] = ()
    created_at: float = 0.0
    #: Zero data retention for this project's requests, as ``logging.zero_data_retention`` is for all.
    zero_data_retention: bool = False
    #: The project's own guardrail settings, only tightening the operator's floor; None: the floor alone.
    guardrails: ProjectGuardrails | None = None
    #: Data residency: region or jurisdiction names its requests may run in; empty: anywhere.
    regions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "log_level": self.log_level,
                "allowed_models": list(self.allowed_models), "allowed_vendors": list(self.allowed_vendors),
                "zero_data_retention": self.zero_data_retention, "regions": list(self.regions),
                "guardrails": None if self.guardrails is None else self.guardrails.to_json(),
                "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    project: str
    name: str
    #: The first characters of the key, shown in listings so people can tell keys apart.
    prefix: str
    #: HMAC-SHA256 of the key under the server secret (hex); never shown.
    digest: str = field(repr=False)
    #: Further projects this key may name with ``x-interlock-project``.
    projects: tuple[str, ...] = ()
    allowed_models: tuple[str, ...] = ()
    created_at: float = 0.0
    expires_at: float | None = None
    revoked_at: float | None = None
    #: Set on the old key by a rotation (the old key then expires after the overlap window).
    replaced_by: str | None = None
    #: Data residency narrower than the project's (both apply); empty: the project's alone.
    regions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "project": self.project, "name": self.name, "prefix": self.prefix,
                "projects": list(self.projects), "allowed_models": list(self.allowed_models),
                "regions": list(self.regions), "created_at": self.created_at, "expires_at": self.expires_at,
                "revoked_at": self.revoked_at, "replaced_by": self.replaced_by}


@dataclass(frozen=True, slots=True)
class Budget:
    id: str
    scope: str
    subject: str
    amount_micro: int
    period: str
    mode: str = "hard"
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    created_at: float = 0.0

    @property
    def amount_nano(self) -> int:
        return self.amount_micro * NANO_PER_MICRO

    @property
    def hard(self) -> bool:
        return self.mode == "hard"

    def describe(self) -> str:
        """``project 'acme' monthly budget`` - how refusals, warnings and alerts name the scope."""
        scope = "end user" if self.scope == "end_user" else self.scope
        who = "every end user" if self.scope == "end_user" and self.subject == EACH else f"{scope} '{self.subject}'"
        return f"{who} {self.period} budget" if self.period != "lifetime" else f"{who} lifetime budget"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "subject": self.subject,
                "amount_usd": usd_str(self.amount_micro), "period": self.period, "mode": self.mode,
                "thresholds": list(self.thresholds), "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class Limit:
    id: str
    scope: str
    subject: str
    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None
    created_at: float = 0.0
    #: MCP tool calls per minute (``mcp/calls.py``); counted apart from rpm.
    tool_calls_per_minute: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "subject": self.subject, "rpm": self.rpm, "tpm": self.tpm,
                "concurrent": self.concurrent, "tool_calls_per_minute": self.tool_calls_per_minute,
                "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class Definitions:
    """Everything the hot path reads, indexed once per reload."""

    version: int = 0
    projects: Mapping[str, Project] = field(default_factory=dict)
    keys: Mapping[str, ApiKey] = field(default_factory=dict)
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    limits: Mapping[str, Limit] = field(default_factory=dict)
    #: (scope, subject) -> budgets / limits on it.
    budgets_on: Mapping[tuple[str, str], tuple[Budget, ...]] = field(default_factory=dict)
    limits_on: Mapping[tuple[str, str], tuple[Limit, ...]] = field(default_factory=dict)
    #: Whether any budget is on a tag / end user, or any limit on a model (else those lookups are skipped).
    tag_budgets: bool = False
    user_budgets: bool = False
    model_limits: bool = False
    #: Whether any limit counts MCP tool calls (else ``Governance.admit_tool_call`` returns at once).
    tool_limits: bool = False
    #: Key id -> the first key of its rotation chain, which budgets and limits on keys name.
    key_root: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, version: int, projects: Iterable[Project], keys: Iterable[ApiKey], budgets: Iterable[Budget],
              limits: Iterable[Limit]) -> Definitions:
        b_on: dict[tuple[str, str], list[Budget]] = {}
        l_on: dict[tuple[str, str], list[Limit]] = {}
        budget_map = {b.id: b for b in budgets}
        limit_map = {lim.id: lim for lim in limits}
        for b in budget_map.values():
            b_on.setdefault((b.scope, b.subject), []).append(b)
        for lim in limit_map.values():
            l_on.setdefault((lim.scope, lim.subject), []).append(lim)
        key_map = {k.id: k for k in keys}
        replaced = {k.replaced_by: k.id for k in key_map.values() if k.replaced_by}
        roots: dict[str, str] = {}
        for kid in key_map:
            root, seen = kid, {kid}
            while root in replaced and replaced[root] not in seen:
                root = replaced[root]
                seen.add(root)
            roots[kid] = root
        return cls(
            version=version,
            projects={p.id: p for p in projects},
            keys=key_map,
            budgets=budget_map,
            limits=limit_map,
            budgets_on={k: tuple(v) for k, v in b_on.items()},
            limits_on={k: tuple(v) for k, v in l_on.items()},
            tag_budgets=any(b.scope == "tag" for b in budget_map.values()),
            user_budgets=any(b.scope == "end_user" for b in budget_map.values()),
            model_limits=any(lim.scope == "model" for lim in limit_map.values()),
            tool_limits=any(lim.tool_calls_per_minute for lim in limit_map.values()),
            key_root=roots,
        )

    @property
    def enforcing(self) -> bool:
        """Any budget or limit defined: counters are in play (and several workers need Redis)."""
        return bool(self.budgets or self.limits)


# ----------------------------------------------------------------- parsing


def usd_str(micro: int) -> str:
    text = format(Decimal(micro) / MICRO_PER_USD, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def parse_usd(value: Any, field_name: str = "amount_usd") -> int:
    """A positive USD amount (number or decimal string) to exact micro-USD."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DefinitionError(field_name, f"expected an amount in USD (a number), got {value!r}")
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise DefinitionError(field_name, f"expected an amount in USD (a number), got {value!r}") from None
    if not dec.is_finite() or dec <= 0:
        raise DefinitionError(field_name, f"expected a positive amount in USD, got {value!r}")
    if dec.adjusted() > 12:  # before scaling: '1e999999' * 10**6 would overflow the decimal context
        raise DefinitionError(field_name, f"at most 9,000,000 USD, got {value!r}")
    micro = dec * MICRO_PER_USD
    if micro != micro.to_integral_value():
        raise DefinitionError(field_name, f"amounts are kept to the micro-dollar (6 decimals), got {value!r}")
    if micro > 9 * 10**12:
        raise DefinitionError(field_name, f"at most 9,000,000 USD, got {value!r}")
    return int(micro)


def parse_period(value: Any, field_name: str = "period") -> str:
    word = str(value).strip().lower() if isinstance(value, str) else ""
    period = _PERIOD_WORDS.get(word)
    if period is None:
        raise DefinitionError(field_name, f"expected one of {', '.join(PERIODS)}, got {value!r}")
    return period


def parse_budget_spec(text: str) -> tuple[int, str, str]:
    """``10/month``, ``2.5/day:soft``, ``100`` (lifetime) -> (micro-USD, period, mode)."""
    spec, _, mode = text.partition(":")
    mode = mode.strip().lower() or "hard"
    if mode not in MODES:
        raise DefinitionError("budget", f"expected hard or soft after ':', got {mode!r}")
    amount, _, period = spec.partition("/")
    return parse_usd(amount, "budget"), parse_period(period or "lifetime", "budget"), mode


def parse_duration(text: str, field_name: str = "expires") -> float:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` -> seconds."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise DefinitionError(field_name, f"expected a duration such as 30d, 12h, 90m or 3600s, got {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise DefinitionError(field_name, f"expected a positive duration, got {text!r}")
    return seconds


def check_project_id(value: Any, field_name: str = "id") -> str:
    if not isinstance(value, str) or not _PROJECT_ID.match(value):
        raise DefinitionError(field_name, "expected 1-64 characters of a-z, 0-9, '_', '.', '-', starting with a "
                                          f"letter or digit, got {value!r}")
    return value


def check_thresholds(value: Any, field_name: str = "thresholds") -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100 for v in value):
        raise DefinitionError(field_name, f"expected a list of percentages from 1 to 100, got {value!r}")
    return tuple(sorted(set(value)))


def check_names(value: Any, field_name: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DefinitionError(field_name, f"expected a list of names, got {value!r}")
    return tuple(dict.fromkeys(v.strip() for v in value))


def positive_int(value: Any, field_name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise DefinitionError(field_name, f"expected a positive integer of at most {MAX_COUNT}, got {value!r}")
    return value


# ----------------------------------------------------------------- periods


def period_key(period: str, now: float) -> str:
    """The UTC calendar period ``now`` falls in: ``2025-06-01``, ``2025-W23``, ``2025-06`` or ``all``."""
    if period == "lifetime":
        return "all"
    day = dt.datetime.fromtimestamp(now, dt.UTC)
    if period == "daily":
        return day.strftime("%Y-%m-%d")
    if period == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.strftime("%Y-%m")


def period_end(period: str, now: float) -> float | None:
    """When the period containing ``now`` ends (epoch seconds); None for lifetime."""
    if period == "lifetime":
        return None
    day = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        end = day + dt.timedelta(days=1)
    elif period == "weekly":
        end = day + dt.timedelta(days=7 - day.weekday())
    else:
        end = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return end.timestamp()


def allowed(patterns: tuple[str, ...], *names: str) -> bool:
    """Whether any of ``names`` matches one of ``patterns`` (exact, or ``prefix/*``)."""
    for pattern in patterns:
        if pattern.endswith("/*"):
            stem = pattern[:-1]
            if any(n.startswith(stem) for n in names):
                return True
        elif pattern in names:
            return True
    return False
