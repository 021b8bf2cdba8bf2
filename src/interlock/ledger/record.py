"""One request → one log row: a tuple of plain values, built once on the hot path.

``settle`` calls :func:`build_row` for every request; the writer then hands
whole batches to the store without touching a record, so this is the only
per-record Python work the log does. The row is in the store's column order
(``rowcodec.ROW_COLUMNS``), its nested parts already JSON: the routing trace
and the attempts as compact arrays (routing's objects are read attribute by
attribute rather than through their ``to_json``; the overrides view is the one
exception), rendered back to routing's JSON shape only when a record is read. What is never in a row: the caller's key
(only its id), request headers, vendor credentials (scrubbed from messages,
attempts and content, see :class:`Redactor`) and, unless the content level is
``full`` and the request is not zero-data-retention, any request or response
content; under zero data retention no error message either.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from interlock.core.cache import HIT
from interlock.core.context import RequestContext
from interlock.core.plain import plain
from interlock.core.trace import Attempt, RoutingTrace

#: Layout version of the ``detail`` column (``rowcodec.DETAIL_FIELDS``); 2 added the short one-target trace.
DETAIL_VERSION = 2
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS

#: Columns holding nested values, stored as JSON text (SQLite) / jsonb (PostgreSQL).
JSON_COLUMNS = frozenset({"tags", "attempts", "guardrails", "routing_trace", "request_content", "response_content"})

COLUMNS: tuple[str, ...] = (
    "id", "received_at", "first_byte_at", "done_at", "duration_ms", "ttft_ms", "output_tps",
    "project", "key_id", "end_user", "tags", "inbound", "requested_model", "model", "vendor", "vendor_model",
    "stream", "status", "error_type", "error_message",
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
    "cost_picousd", "cost_estimated", "cache_hit", "simulated",
    "attempts", "guardrails", "explanation", "routing_trace", "content_level", "request_content", "response_content",
)
#: What interlock's response cache did (ledger schema v6 SQLite / v7 PostgreSQL): ``response_cache`` is
#: NULL when the cache was not on for the request, else hit | miss | bypass; ``cache_saved_picousd`` what a
#: hit's answer cost when it was made (NULL unless a hit). Not ``cache_hit``, which is the vendor's prompt
#: cache (cached input tokens, ``cache_read_tokens``).
CACHE_COLUMNS: tuple[str, ...] = ("response_cache", "cache_saved_picousd")
#: The strongest action the guardrails took on the request (ledger schema v8 SQLite / v9 PostgreSQL), NULL
#: when nothing was detected: the request log's ``guardrail`` filter reads it through a partial index, where
#: the full detections live in ``detail``.
GUARDRAIL_COLUMN = "guardrail_action"
#: Guardrail actions, weakest first: "unchecked" (a detector failed open), monitor, redact, "unavailable"
#: (a detector failed closed: refused), block.
GUARDRAIL_ACTIONS: tuple[str, ...] = ("unchecked", "monitor", "redact", "unavailable", "block")
_RANK = {a: i for i, a in enumerate(GUARDRAIL_ACTIONS)}


def strongest_action(found: Any) -> str:
    """The strongest action of a record's guardrail detections, "" when there are none."""
    best = -1
    if isinstance(found, list | tuple):
        for item in found:
            if isinstance(item, Mapping):
                rank = 0 if item.get("unchecked") else _RANK.get(item.get("action"), -1)  # type: ignore[arg-type]
                if rank > best:
                    best = rank
    return GUARDRAIL_ACTIONS[best] if best >= 0 else ""

_TOKEN_LIKE = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}|\b(sk|ik|pk|rk)-[A-Za-z0-9_-]{12,}")
REDACTED = "[REDACTED]"


class Redactor:
    """Removes credentials from free text before it is stored.

    Vendors echo parts of keys in error messages and callers paste keys into
    prompts; neither may end up in the log. Known secrets (the configured vendor
    keys) are replaced exactly, and anything shaped like a bearer token or an
    ``sk-``-style key is replaced by pattern.
    """

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return _TOKEN_LIKE.sub(lambda m: (m.group(1) or "") + REDACTED, value)

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value


_NO_REFS: dict[str, int] = {}


def pack_targets(trace: RoutingTrace) -> tuple[list[tuple[Any, ...]], list[Any], dict[str, int]]:
    """A trace's candidates as plain arrays (see ``rowcodec``), its order as candidate indexes, and each
    candidate's index by target key."""
    packed: list[tuple[Any, ...]] = []
    refs: dict[str, int] = {}
    append = packed.append
    for c in trace.candidates:
        t = c.target
        refs[t.key] = len(packed)
        if c.reason is None and c.score is None and not c.detail:
            append((t.key, t.vendor_id, t.model_id, c.group))
        else:
            append((t.key, t.vendor_id, t.model_id, c.group, c.reason, c.score, c.detail))
    order = []
    for t in trace.order:
        key = t.key
        order.append(refs.get(key, key))
    return packed, order, refs


def single_target(trace: RoutingTrace, target: Any, attempts: list[Any], requested_model: str | None) -> bool:
    """Whether the trace is the common one-target decision that ``build_row`` stores in its short form.

    One eligible, unscored candidate of the requested name - the target the request went to - no
    routing overrides, and the request's own attempts: everything but the policy, strategy, token
    figures and reason is then in the row's other fields.
    """
    order = trace.order
    if len(order) != 1 or order[0] is not target or trace.attempts is not attempts or trace.overrides \
            or trace.difficulty is not None:
        return False
    cands = trace.candidates
    if len(cands) != 1:
        return False
    c = cands[0]
    if c.target is not target or c.reason is not None or c.score is not None or c.detail or c.group != 0:
        return False
    names = trace.names
    requested = trace.requested
    return bool(requested) and requested == requested_model and len(names) == 1 and names[0] == requested


def pack_attempts(attempts: Iterable[Any], t0: float, redactor: Redactor, zdr: bool,
                  candidates: list[tuple[Any, ...]], refs: dict[str, int]) -> tuple[list[Any], bool]:
    """Attempts as plain arrays (see ``rowcodec``), and whether one failed.

    An attempt names its target by index into the trace's ``candidates`` when it is one of them.
    Error text is scrubbed, or dropped under zero data retention.
    """
    out: list[Any] = []
    failed = False
    for a in attempts:
        if a.__class__ is Attempt:
            error = a.error
            if error is not None:
                error = None if zdr else redactor.text(error)
            outcome = a.outcome
            if outcome == "failed":
                failed = True
            target: Any = refs.get(a.target)
            if target is None or candidates[target][1] != a.vendor or candidates[target][2] != a.model:
                target = (a.target, a.vendor, a.model)
            latency = a.latency_ms
            offset = (a.started - t0) * 1e6
            packed = (target, outcome, a.status, None if latency is None else int(latency * 1000.0 + 0.5),
                      error, a.code, a.retry_after, int(offset) if -8.64e10 < offset < 8.64e10 else None)
            out.append((*packed, a.regions) if a.regions else packed)
        else:  # some other stage's attempt object: kept in its own JSON shape
            failed = True  # (unknown: the trace's own sentence is asked for)
            item = redactor.deep(plain(a))
            out.append(_without_messages(item) if zdr else item)
    return out, failed


def _answered_row(ctx: RequestContext, level: str, zdr: bool) -> tuple[Any, ...] | None:
    """``build_row`` for the common request - answered by its one target at the first attempt, no
    content kept - with less work; None for anything else (``build_row`` does it in full).

    What it leaves out is what such a request cannot have: an error, a failed or foreign attempt, a
    second candidate, overrides. ``tests/test_ledger_rows.py`` checks it row for row against the full path.
    """
    target = ctx.target
    usage = ctx.usage
    trace = ctx.routing
    attempts = ctx.attempts
    cache = ctx.cache
    if (target is None or usage is None or ctx.error is not None or ctx.client_disconnected or len(attempts) != 1
            or trace.__class__ is not RoutingTrace or ctx.guardrails is not None
            or (level == "full" and ctx.capture_content and not zdr)
            or (cache is not None and cache.status == HIT)):  # a replay made no attempt: build_row records it
        return None
    a = attempts[0]
    key = target.key
    vendor = target.vendor_id
    model = target.model_id
    if (a.__class__ is not Attempt or a.outcome != "answered" or a.error is not None or a.target != key
            or a.vendor != vendor or a.model != model
            or not single_target(trace, target, attempts, ctx.requested_model)):
        return None
    # Every value below is a str, int, float, None or a tuple of them: orjson needs no options.
    started = ctx.started
    duration_us = int((time.perf_counter() - started) * 1e6 + 0.5)
    first_byte = ctx.first_byte
    latency = a.latency_ms
    offset = (a.started - started) * 1e6
    cache_read = usage.cache_read_tokens
    principal = ctx.principal
    cost = ctx.cost
    plan = ctx.plan
    tags = ctx.tags
    detail = orjson.dumps(
        (DETAIL_VERSION, None, duration_us,
         int((first_byte - started) * 1e6 + 0.5) if first_byte is not None else None, None, ctx.end_user,
         target.vendor_model, None, None, usage.cache_write_tokens, usage.reasoning_tokens,
         1 if cost is not None and cost.estimated else 0, 1 if cache_read else 0, 1 if target.simulated else 0,
         ((0, "answered", a.status, None if latency is None else int(latency * 1000.0 + 0.5), None, a.code,
           a.retry_after, int(offset) if -8.64e10 < offset < 8.64e10 else None, *((a.regions,) if a.regions else ())),),
         None, plan.explanation_text if plan is not None else None,
         (trace.policy, trace.strategy, trace.estimated_input_tokens, trace.requested_output_tokens, trace.reason),
         "zdr" if zdr else level, _client(ctx, zdr))).decode()
    return (ctx.id, ctx.received_at,
            (principal.project or "") if principal is not None else "",
            (principal.key_id or principal.key_prefix or "") if principal is not None else "",
            model, ctx.requested_model or "", vendor, ctx.status, cost.picousd if cost is not None else None,
            usage.input_tokens, cache_read, usage.output_tokens, orjson.dumps(tags).decode() if tags else "",
            ctx.inbound, 1 if ctx.stream else 0, "", "", cache.status if cache is not None else "", "", "", detail)


def build_row(ctx: RequestContext, level: str, zdr: bool, redactor: Redactor) -> tuple[Any, ...]:
    """The log row of a settled request (``rowcodec.ROW_COLUMNS``), JSON already encoded.

    ``level`` is already capped by zero data retention (``zdr``), which also drops error messages.
    Times are integer microseconds in ``detail`` (rounding floats costs more than it saves), ``done_at``
    is ``received_at`` + the duration (one clock read); an absent text column is "" (``rowcodec.TEXT_COLUMNS``),
    and so is ``cache_saved_picousd`` unless the response cache hit.
    """
    row = _answered_row(ctx, level, zdr)
    if row is not None:
        return row
    started = ctx.started
    received = ctx.received_at
    duration_us = int((time.perf_counter() - started) * 1e6 + 0.5)
    first_byte = ctx.first_byte
    usage = ctx.usage
    if usage is not None:
        input_tokens: int | None = usage.input_tokens
        cache_read: int | None = usage.cache_read_tokens
        cache_write: int | None = usage.cache_write_tokens
        output_tokens: int | None = usage.output_tokens
        reasoning: int | None = usage.reasoning_tokens
    else:
        input_tokens = cache_read = cache_write = output_tokens = reasoning = None
    target = ctx.target
    if target is not None:
        model = target.model_id
        vendor = target.vendor_id
        vendor_model: str | None = target.vendor_model
        simulated = 1 if target.simulated else 0
    else:
        model = vendor = ""
        vendor_model = None
        simulated = 0
    error = ctx.error
    if error is not None:
        error_type: str | None = error.code or error.type
        message = None if zdr else redactor.text(error.message)
    else:
        error_type = "client_disconnected" if ctx.client_disconnected else None
        message = None
    principal = ctx.principal
    if principal is not None:
        project = principal.project or ""
        key_id = principal.key_id or principal.key_prefix or ""
    else:
        project = key_id = ""
    cost = ctx.cost
    if cost is not None:
        picousd: int | None = cost.picousd
        estimated = 1 if cost.estimated else 0
    else:
        picousd = None
        estimated = 0
    plan = ctx.plan
    explanation = plan.explanation_text if plan is not None else None
    trace: Any = ctx.routing
    packed_trace: Any = None
    attempts = ctx.attempts
    routed = trace.__class__ is RoutingTrace
    single = routed and target is not None and single_target(trace, target, attempts, ctx.requested_model)
    if single:
        assert target is not None
        key = target.key
        candidates, refs = [(key, vendor, model, 0)], {key: 0}
    elif routed:
        candidates, order, refs = pack_targets(trace)
    else:
        candidates, order, refs = [], [], _NO_REFS
    packed_attempts, failed = (pack_attempts(attempts, started, redactor, zdr, candidates, refs) if attempts
                               else (None, False))
    if single:
        # Everything else of the trace is in the row's own columns (see rowcodec.expand_single).
        packed_trace = (trace.policy, trace.strategy, trace.estimated_input_tokens, trace.requested_output_tokens,
                        trace.outcome_reason() if failed else trace.reason)
    elif routed:
        own = trace.attempts
        packed_own = None
        if own is not attempts:
            packed_own, failed = pack_attempts(own, started, redactor, zdr, candidates, refs)
        overrides = trace.overrides
        if not overrides:  # routing's view is falsy when it has nothing to render
            overrides = {}
        else:
            if hasattr(overrides, "to_json"):
                overrides = overrides.to_json()
            if overrides:
                overrides = redactor.deep(overrides)
        requested = trace.requested
        names = trace.names
        packed_trace = (requested, None if len(names) == 1 and names[0] == requested else names, trace.policy,
                        trace.strategy, trace.estimated_input_tokens, trace.requested_output_tokens,
                        trace.outcome_reason() if failed else trace.reason, candidates, order, overrides,
                        packed_own)
        if trace.difficulty is not None:  # the score and tier, and each candidate's tier (by index)
            packed_trace = (*packed_trace, {**trace.difficulty.to_json(),
                                            "tiers": [c.tier for c in trace.candidates]})
    elif trace is not None:  # not routing's trace: stored in its own JSON shape, with the whole explanation
        reason = trace.outcome_reason() if hasattr(trace, "outcome_reason") else None
        packed_trace = redactor.deep(plain(trace))
        if zdr:
            packed_trace = _without_messages(packed_trace)
        if isinstance(reason, str):
            explanation = reason + f" ({explanation})" if explanation else reason
    request_content = response_content = ""
    if level == "full" and ctx.capture_content and not zdr:
        if ctx.request_content is not None:
            request_content = dumps(redactor.deep(ctx.request_content))
        if ctx.response_content is not None:
            response_content = dumps(redactor.deep(ctx.response_content))
    cache = ctx.cache
    response_cache = ""
    saved_picousd: int | str = ""
    if cache is not None:
        response_cache = cache.status
        saved = cache.saved if response_cache == HIT else None
        if saved is not None:
            saved_picousd = saved.picousd
    tags = ctx.tags
    guardrails = ctx.guardrails
    detail = orjson.dumps(
        (DETAIL_VERSION, None, duration_us,
         int((first_byte - started) * 1e6 + 0.5) if first_byte is not None else None, None, ctx.end_user,
         vendor_model, error_type, message, cache_write, reasoning, estimated, 1 if cache_read else 0, simulated,
         packed_attempts, guardrails, explanation, packed_trace, "zdr" if zdr else level, _client(ctx, zdr)),
        option=JSON_OPTIONS, default=json_default).decode()
    return (ctx.id, received, project, key_id, model, ctx.requested_model or "", vendor,
            499 if ctx.client_disconnected else ctx.status, picousd, input_tokens, cache_read, output_tokens,
            orjson.dumps(tags).decode() if tags else "", ctx.inbound, 1 if ctx.stream else 0, request_content,
            response_content, response_cache, saved_picousd,
            strongest_action(guardrails) if guardrails else "", detail)


def _client(ctx: RequestContext, zdr: bool) -> str | None:
    """The caller's IP address (behind ``server.trusted_proxies``, the one they forwarded); not under ZDR."""
    exchange = ctx.exchange
    return (exchange.client_host or None) if exchange is not None and not zdr else None


def dumps(value: Any) -> str:
    """JSON text of a stored value (routing's objects through :func:`json_default`)."""
    return orjson.dumps(value, option=JSON_OPTIONS, default=json_default).decode()


def _without_messages(value: Any) -> Any:
    """Zero data retention: vendor error messages may quote the prompt, so none are kept."""
    if isinstance(value, dict):
        return {k: _without_messages(v) for k, v in value.items() if k not in ("message", "error_message", "error")}
    if isinstance(value, list):
        return [_without_messages(v) for v in value]
    return value


def json_default(value: Any) -> Any:
    """orjson's fallback for routing's objects (dataclasses are passed through to here)."""
    to_json = getattr(value, "to_json", None)
    return to_json() if callable(to_json) else plain(value)
