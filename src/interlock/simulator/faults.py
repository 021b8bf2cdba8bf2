"""Fault descriptions for the simulator, and the grammar of the per-request headers.

A fault is what turns the simulator from a well-behaved upstream into a bad
day at a vendor: an error status, a connection that is refused or reset, a
stream that stalls or breaks. The same :class:`FaultSpec` is produced from
the ``simulator.faults`` config and from the ``x-interlock-simulator-fault``
header so that both paths behave identically, and the grammar is strict:
a chaos run that silently ignores a typo tests nothing.

Header grammar (whitespace around tokens is ignored, keys are lower case)::

    fault   := item (";" item)*
    item    := key | key "=" value
    kinds   := error=STATUS | refuse | reset | hang | slow_first_byte=SECONDS
             | stop_after=CHUNKS | malformed_json | malformed_sse | error_event[=STATUS]
    options := rate=P (0 <= P <= 1, default 1) | retry_after=SECONDS (with error=429 or 503)

Exactly one kind per spec. ``x-interlock-simulator-latency`` is
``ttft=SECONDS;tps=TOKENS_PER_SECOND`` (either part optional).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

FaultKind = Literal[
    "error",
    "refuse",
    "reset",
    "hang",
    "slow_first_byte",
    "stop_after",
    "malformed_json",
    "malformed_sse",
    "error_event",
]

FAULT_HEADER = "x-interlock-simulator-fault"
LATENCY_HEADER = "x-interlock-simulator-latency"

_FLAG_KINDS: frozenset[str] = frozenset({"refuse", "reset", "hang", "malformed_json", "malformed_sse"})
_VALUE_KINDS: frozenset[str] = frozenset({"error", "slow_first_byte", "stop_after", "error_event"})
_KINDS = _FLAG_KINDS | _VALUE_KINDS
_OPTIONS: frozenset[str] = frozenset({"rate", "retry_after"})

DEFAULT_ERROR_EVENT_STATUS = 529


class FaultSyntaxError(ValueError):
    """A fault or latency description that does not follow the grammar; ``key`` names the culprit."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.detail = message


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault and how often it strikes.

    ``status`` is the HTTP status of ``error`` / ``error_event``; ``seconds`` the
    delay of ``slow_first_byte``; ``chunks`` how many stream events ``stop_after``
    lets through before the connection drops.
    """

    kind: FaultKind
    rate: float = 1.0
    status: int | None = None
    retry_after: float | None = None
    seconds: float | None = None
    chunks: int | None = None


@dataclass(frozen=True, slots=True)
class LatencyOverride:
    """Fixed timing for one request (from the latency header): no sampling."""

    ttft: float | None = None
    tps: float | None = None


def _number(key: str, raw: object, *, lo: float, hi: float = math.inf, integer: bool = False) -> float:
    if isinstance(raw, bool):
        raise FaultSyntaxError(key, f"expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise FaultSyntaxError(key, f"expected a number, got {raw!r}") from None
    else:
        raise FaultSyntaxError(key, f"expected a number, got {raw!r}")
    if not math.isfinite(value) or value < lo or value > hi:
        bound = f"between {lo:g} and {hi:g}" if math.isfinite(hi) else f">= {lo:g}"
        raise FaultSyntaxError(key, f"must be {bound}, got {raw!r}")
    if integer and value != int(value):
        raise FaultSyntaxError(key, f"must be a whole number, got {raw!r}")
    return value


def _status(key: str, raw: object) -> int:
    return int(_number(key, raw, lo=400, hi=599, integer=True))


def _build(items: Mapping[str, object], prefix: str) -> FaultSpec:
    """Validate parsed ``key -> value`` items (``True`` for bare flags) into a spec."""
    for key in items:
        if key not in _KINDS and key not in _OPTIONS:
            known = ", ".join(sorted(_KINDS | _OPTIONS))
            raise FaultSyntaxError(f"{prefix}{key}", f"unknown fault key (known: {known})")
    kinds = [k for k in items if k in _KINDS]
    if not kinds:
        raise FaultSyntaxError(prefix.rstrip(".") or "fault", "names no fault kind (e.g. error=503, reset, hang)")
    if len(kinds) > 1:
        raise FaultSyntaxError(f"{prefix}{kinds[1]}", f"only one fault kind per spec, already have {kinds[0]!r}")
    kind = kinds[0]
    value = items[kind]
    rate = 1.0
    if "rate" in items:
        rate = _number(f"{prefix}rate", items["rate"], lo=0.0, hi=1.0)
    if kind in _FLAG_KINDS and value is not True:
        if value is False:
            raise FaultSyntaxError(f"{prefix}{kind}", "set it to true or leave the fault out")
        raise FaultSyntaxError(f"{prefix}{kind}", f"takes no value, got {value!r}")
    status = seconds = chunks = None
    if kind == "error":
        if value is True:
            raise FaultSyntaxError(f"{prefix}error", "needs a status, e.g. error=503")
        status = _status(f"{prefix}error", value)
    elif kind == "error_event":
        status = DEFAULT_ERROR_EVENT_STATUS if value is True else _status(f"{prefix}error_event", value)
    elif kind == "slow_first_byte":
        seconds = _number(f"{prefix}slow_first_byte", value, lo=0.0)
    elif kind == "stop_after":
        chunks = int(_number(f"{prefix}stop_after", value, lo=0, integer=True))
    retry_after = None
    if "retry_after" in items:
        if kind != "error" or status not in (429, 503, 529):
            raise FaultSyntaxError(f"{prefix}retry_after", "only applies to error=429, 503 or 529")
        retry_after = _number(f"{prefix}retry_after", items["retry_after"], lo=0.0)
    elif kind == "error" and status == 429:
        retry_after = 1.0
    return FaultSpec(
        kind=cast(FaultKind, kind), rate=rate, status=status, retry_after=retry_after, seconds=seconds, chunks=chunks
    )


def _split_items(text: str, header: str) -> dict[str, object]:
    items: dict[str, object] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not key:
            raise FaultSyntaxError(header, f"empty key in {part!r}")
        if key in items:
            raise FaultSyntaxError(header, f"{key!r} given twice")
        items[key] = value.strip() if eq else True
    if not items:
        raise FaultSyntaxError(header, "is empty")
    return items


def parse_fault_header(value: str) -> FaultSpec:
    """Parse ``x-interlock-simulator-fault``; errors name the header and the bad key."""
    items = _split_items(value, FAULT_HEADER)
    try:
        return _build(items, "")
    except FaultSyntaxError as exc:
        raise FaultSyntaxError(FAULT_HEADER, str(exc)) from None


def parse_latency_header(value: str) -> LatencyOverride:
    """Parse ``x-interlock-simulator-latency: ttft=0.2;tps=100``."""
    items = _split_items(value, LATENCY_HEADER)
    ttft = tps = None
    for key, raw in items.items():
        if raw is True:
            raise FaultSyntaxError(LATENCY_HEADER, f"{key} needs a value")
        if key == "ttft":
            ttft = _number(f"{LATENCY_HEADER}: ttft", raw, lo=0.0)
        elif key == "tps":
            tps = _number(f"{LATENCY_HEADER}: tps", raw, lo=1e-3)
        else:
            raise FaultSyntaxError(LATENCY_HEADER, f"unknown key {key!r} (known: ttft, tps)")
    return LatencyOverride(ttft=ttft, tps=tps)


def fault_from_config(raw: object, where: str) -> FaultSpec:
    """A fault from config: either the header grammar as a string or a mapping with the same keys.

    ``where`` is the config path (``simulator.faults.openai/*``) used to name bad keys.
    """
    if isinstance(raw, str):
        items = _split_items(raw, where)
    elif isinstance(raw, Mapping):
        items = {}
        for key, value in raw.items():
            if not isinstance(key, str):
                raise FaultSyntaxError(where, f"keys must be strings, got {key!r}")
            items[key.strip().lower()] = value
    else:
        raise FaultSyntaxError(where, f"expected a mapping or a fault string, got {type(raw).__name__}")
    return _build(items, f"{where}.")


def describe(spec: FaultSpec) -> str:
    """The spec back in header grammar (for logs and the docs' examples)."""
    parts: list[str] = []
    if spec.kind in ("error", "error_event"):
        parts.append(f"{spec.kind}={spec.status}")
    elif spec.kind == "slow_first_byte":
        parts.append(f"slow_first_byte={spec.seconds:g}")
    elif spec.kind == "stop_after":
        parts.append(f"stop_after={spec.chunks}")
    else:
        parts.append(spec.kind)
    if spec.retry_after is not None:
        parts.append(f"retry_after={spec.retry_after:g}")
    if spec.rate != 1.0:
        parts.append(f"rate={spec.rate:g}")
    return ";".join(parts)

