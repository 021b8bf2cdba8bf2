"""The request log's row: the columns one record is written as, and how a row reads back as the record.

A record is written as one tuple in :data:`ROW_COLUMNS` order, built once on
the hot path (``record.build_row``) with its JSON already encoded, so the
writer hands batches to the store without touching a record. The fields the
log's filters and the spend rollups read are real columns; everything else is
one compact JSON array, the ``detail`` column (:data:`DETAIL_FIELDS`), whose
first element is its layout version. The routing trace and the attempts are
stored in it as plain arrays - the attempts once, though the trace repeats
them, each naming its target by index into the trace's candidates - and
rendered back to routing's JSON shape (``RoutingTrace.to_json``) only when a
record is read (:func:`decode_row`).

Rows written before ``detail`` existed (schema v2) have it NULL and every
field in its own column; :func:`decode_row` reads both. Records given as
dicts (older spill files, tools, tests) become rows through
:func:`row_from_record`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from interlock.core.plain import plain
from interlock.ledger.record import (
    CACHE_COLUMNS,
    COLUMNS,
    DETAIL_VERSION,
    GUARDRAIL_COLUMN,
    JSON_COLUMNS,
    dumps,
    strongest_action,
)

Row = tuple[Any, ...]

#: What a new record writes, in this order (every other column of ``requests`` keeps NULL or its default).
ROW_COLUMNS: tuple[str, ...] = (
    "id", "received_at", "project", "key_id", "model", "requested_model", "vendor", "status", "cost_picousd",
    "input_tokens", "cache_read_tokens", "output_tokens", "tags", "inbound", "stream", "request_content",
    "response_content", *CACHE_COLUMNS, GUARDRAIL_COLUMN, "detail",
)
(R_ID, R_RECEIVED, R_PROJECT, R_KEY, R_MODEL, R_REQUESTED, R_VENDOR, R_STATUS, R_COST, R_INPUT, R_CACHE_READ,
 R_OUTPUT, R_TAGS, R_INBOUND, R_STREAM, R_REQUEST, R_RESPONSE, R_RESPONSE_CACHE, R_CACHE_SAVED, R_GUARDRAIL,
 R_DETAIL) = range(len(ROW_COLUMNS))
#: Rows spilled by earlier versions: before the guardrail column, and before the response cache's columns.
_ROW_LEN_V3 = len(ROW_COLUMNS) - 1
_ROW_LEN_V2 = _ROW_LEN_V3 - len(CACHE_COLUMNS)
#: Columns a row holds as "" when they are absent: the stores write NULL for "" (``NULLIF``). All text but
#: ``cache_saved_picousd`` (an integer, absent unless the response cache hit).
#: Binding None costs Python's sqlite3 an adapter lookup per value - more than all other parameters.
TEXT_COLUMNS = ("project", "key_id", "model", "requested_model", "vendor", "tags", "request_content",
                "response_content", *CACHE_COLUMNS, GUARDRAIL_COLUMN)
_TEXT_POSITIONS = tuple(ROW_COLUMNS.index(c) for c in TEXT_COLUMNS)

#: The ``detail`` array, after its version: the record's other fields, times as integer microseconds
#: (``done_at`` is ``received_at`` + ``done_us``, or + ``duration_us`` when that is null; ``first_byte_at`` is
#: ``received_at`` + ``ttft_us``), ``output_tps`` when it was given rather than derived, and
#: ``explanation``: the plan's part of it when the trace is stored packed, else the whole sentence.
DETAIL_FIELDS: tuple[str, ...] = (
    "done_us", "duration_us", "ttft_us", "output_tps", "end_user", "vendor_model", "error_type", "error_message",
    "cache_write_tokens", "reasoning_tokens", "cost_estimated", "cache_hit", "simulated", "attempts",
    "guardrails", "explanation", "routing_trace", "content_level", "client_ip",
)
_D = {name: 1 + i for i, name in enumerate(DETAIL_FIELDS)}
#: Detail fields copied to the record as they are.
_PLAIN_FIELDS = tuple((name, _D[name]) for name in (
    "end_user", "vendor_model", "error_type", "error_message", "cache_write_tokens", "reasoning_tokens",
    "cost_estimated", "cache_hit", "simulated", "guardrails", "content_level"))
_D_DONE, _D_DURATION, _D_TTFT, _D_TPS = _D["done_us"], _D["duration_us"], _D["ttft_us"], _D["output_tps"]
_D_ATTEMPTS, _D_EXPLANATION, _D_TRACE = _D["attempts"], _D["explanation"], _D["routing_trace"]
#: Added last: details written before it are one element shorter.
_D_CLIENT = _D["client_ip"]

#: What queries select: every column a record may have been written to (old rows), the response cache's,
#: then ``detail``.
READ_COLUMNS: tuple[str, ...] = (*COLUMNS, *CACHE_COLUMNS, "detail")
#: The record's own columns (every read column but ``detail``).
_RECORD_COLUMNS = READ_COLUMNS[:-1]

#: ``detail`` layouts this version reads: 1, and 2, which may hold a short one-target trace.
_LAYOUTS = (1, DETAIL_VERSION)
#: The short trace of a one-target decision (``record.build_row``).
_SINGLE_FIELDS = ("policy", "strategy", "estimated_input_tokens", "requested_output_tokens", "reason")

#: Spill-file lines that hold a row start with this marker (older files hold record objects).
SPILL_ROW = "r1"

# Packed forms (record.build_row):
#   trace     [requested, models (null: just requested), policy, strategy, estimated_input_tokens,
#              requested_output_tokens, reason, candidates, order (candidate indexes), overrides,
#              attempts (null: the record's)]
#             or, for a one-target decision (layout 2), [policy, strategy, estimated_input_tokens,
#              requested_output_tokens, reason]: the rest is the record's own fields (expand_single)
#   candidate [target, vendor, model, group(, filtered, score, detail)]
#   attempt   [target (candidate index, or [target, vendor, model]), outcome, status, latency_us, error, code,
#              retry_after_s, start_us(, regions)]


def _loads(value: Any) -> Any:
    if isinstance(value, str | bytes):
        # Text written by an older version that is not JSON is returned as it is.
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(value)
    return value


def _ms(us: int | None) -> float | None:
    return None if us is None else us / 1000.0


# ----------------------------------------------------------------- reading


def render_attempt(a: Sequence[Any], candidates: Sequence[Sequence[Any]], start: bool) -> dict[str, Any]:
    """A packed attempt in routing's shape (``Attempt.to_json``), with ``start_ms`` when ``start``."""
    ref = a[0]
    target, vendor, model = (candidates[ref] if isinstance(ref, int) else ref)[:3]
    out: dict[str, Any] = {"target": target, "vendor": vendor, "model": model, "outcome": a[1], "status": a[2],
                           "latency_ms": _ms(a[3])}
    if a[4] is not None:
        out["error"] = a[4]
    if a[5] is not None:
        out["code"] = a[5]
    if a[6] is not None:
        out["retry_after_s"] = a[6]
    if start and a[7] is not None:
        out["start_ms"] = a[7] / 1000.0
    if len(a) > 8 and a[8]:
        out["regions"] = a[8]
    return out


def render_attempts(packed: Any, candidates: Sequence[Sequence[Any]], start: bool) -> Any:
    if not isinstance(packed, list):
        return packed
    return [render_attempt(a, candidates, start) if isinstance(a, list) else a for a in packed]


def render_candidate(c: Sequence[Any]) -> dict[str, Any]:
    """A packed candidate in routing's shape (``Candidate.to_json``)."""
    reason = c[4] if len(c) > 4 else None
    out: dict[str, Any] = {"target": c[0], "vendor": c[1], "model": c[2], "group": c[3], "eligible": reason is None}
    if len(c) > 4:
        if reason is not None:
            out["filtered"] = reason
        if c[5] is not None:
            out["score"] = round(c[5], 6)
        detail = c[6]
        if detail:
            out["detail"] = {k: v for k, v in detail.items() if v is not None}
    return out


def render_trace(packed: Any, attempts: Any) -> Any:
    """A packed trace in routing's shape (``RoutingTrace.to_json``); anything else as it was stored."""
    if not isinstance(packed, list):
        return packed
    candidates = packed[7]
    own = packed[10]
    rendered = [render_candidate(c) for c in candidates]
    difficulty = dict(packed[11]) if len(packed) > 11 and isinstance(packed[11], dict) else None
    if difficulty is not None:
        for out, tier in zip(rendered, difficulty.pop("tiers", None) or (), strict=False):
            if tier is not None:
                out["tier"] = tier
    trace = {
        "requested": packed[0],
        "models": packed[1] if packed[1] is not None else [packed[0]],
        "policy": packed[2],
        "strategy": packed[3],
        "estimated_input_tokens": packed[4],
        "requested_output_tokens": packed[5],
        "reason": packed[6],
        "order": [candidates[i][0] if isinstance(i, int) else i for i in packed[8]],
        "candidates": rendered,
        "overrides": packed[9],
        "attempts": render_attempts(own if own is not None else (attempts or []), candidates, False),
    }
    if difficulty is not None:
        trace["difficulty"] = difficulty
    return trace


def expand_single(packed: Sequence[Any], record: Mapping[str, Any], vendor_model: str | None) -> list[Any]:
    """A short one-target trace (``record.single_target``) in the full packed form.

    The request's name is the record's ``requested_model``; the one candidate, the only target in the
    order, is the record's vendor and model (its key ``vendor/vendor_model``); no overrides.
    """
    vendor = record["vendor"]
    candidate = [f"{vendor}/{vendor_model}", vendor, record["model"], 0]
    return [record["requested_model"], None, *packed[:5], [candidate], [0], {}, None]


def decode_row(values: Sequence[Any]) -> dict[str, Any]:
    """A row read with :data:`READ_COLUMNS` → the record as the admin API and the CLI show it."""
    detail = values[-1]
    if detail is None:
        return _decode_legacy(values)
    d = orjson.loads(detail) if isinstance(detail, str | bytes) else detail
    if not isinstance(d, list) or d[0] not in _LAYOUTS:
        raise ValueError(f"request log row {values[0]!r}: unknown detail layout")
    out: dict[str, Any] = dict(zip(_RECORD_COLUMNS, values, strict=False))
    received = out["received_at"]
    done, duration, ttft = d[_D_DONE], d[_D_DURATION], d[_D_TTFT]
    if done is None:
        done = duration
    out["done_at"] = received + done / 1e6 if done is not None else None
    out["first_byte_at"] = received + ttft / 1e6 if ttft is not None else None
    out["duration_ms"] = _ms(duration)
    out["ttft_ms"] = _ms(ttft)
    for name, i in _PLAIN_FIELDS:
        out[name] = d[i]
    out["client_ip"] = d[_D_CLIENT] if len(d) > _D_CLIENT else None
    tps = d[_D_TPS]
    output = out["output_tokens"]
    if tps is None and output and duration is not None:
        generation = duration - ttft if out["stream"] and ttft is not None else duration
        tps = round(output * 1e6 / generation, 3) if generation > 0 else None
    out["output_tps"] = tps
    out["tags"] = _loads(out["tags"])
    out["request_content"] = _loads(out["request_content"])
    out["response_content"] = _loads(out["response_content"])
    attempts, trace, explanation = d[_D_ATTEMPTS], d[_D_TRACE], d[_D_EXPLANATION]
    candidates: Sequence[Sequence[Any]] = ()
    if isinstance(trace, list) and len(trace) == len(_SINGLE_FIELDS):
        trace = expand_single(trace, out, d[_D["vendor_model"]])
    if isinstance(trace, list):
        candidates = trace[7]
        explanation = trace[6] + f" ({explanation})" if explanation else trace[6]
    out["attempts"] = render_attempts(attempts, candidates, True)
    out["routing_trace"] = render_trace(trace, attempts)
    out["explanation"] = explanation
    _usd(out)
    return out


def _decode_legacy(values: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, value in zip(_RECORD_COLUMNS, values, strict=False):
        out[column] = _loads(value) if column in JSON_COLUMNS else value
    _usd(out)
    return out


def _usd(out: dict[str, Any]) -> None:
    """The money fields in USD beside their picodollars: ``cost_usd`` and ``cache_saved_usd``."""
    cost = out.get("cost_picousd")
    out["cost_usd"] = cost / 1e12 if cost is not None else None
    saved = out.get("cache_saved_picousd")
    out["cache_saved_usd"] = saved / 1e12 if saved is not None else None


def row_record(row: Row) -> dict[str, Any]:
    """A row as the record it stands for (what the tracer reads), as the stores would return it."""
    values: list[Any] = [None] * len(READ_COLUMNS)
    for i, (name, value) in enumerate(zip(ROW_COLUMNS, row, strict=True)):
        if name in _READ_POS:  # not the guardrail column: the record has its guardrails in full
            values[_READ_POS[name]] = None if value == "" and i in _TEXT_POSITIONS else value
    return decode_row(values)


_READ_POS = {name: i for i, name in enumerate(READ_COLUMNS)}


# ----------------------------------------------------------------- records given as dicts


#: Values of NOT NULL columns a record may leave out.
_DEFAULTS = {"stream": 0, "status": 0, "cost_estimated": 0, "simulated": 0, "cache_hit": 0, "inbound": ""}


def _us(value: Any, scale: float = 1000.0) -> int | None:
    return None if value is None else round(float(value) * scale)


def row_from_record(record: Mapping[str, Any]) -> Row:
    """A record given as a dict (an older spill file, a tool, a test) → a row, fields kept as they are.

    Its attempts and trace are kept in the JSON shape they have (rendered back as they are).
    """
    get = record.get

    def json_or_empty(key: str) -> str:
        value = get(key)
        return "" if value is None else dumps(value)

    received = get("received_at")
    done = get("done_at")
    attempts = get("attempts")
    if isinstance(attempts, list | tuple):
        attempts = [plain(a) for a in attempts]
    values = {
        "done_us": _us(done - received, 1e6) if done is not None and received is not None else None,
        "duration_us": _us(get("duration_ms")), "ttft_us": _us(get("ttft_ms")), "attempts": plain(attempts),
        "routing_trace": plain(get("routing_trace")),
    }
    detail = [DETAIL_VERSION, *(values[name] if name in values else get(name, _DEFAULTS.get(name))
                                for name in DETAIL_FIELDS)]
    return (
        get("id"), received, get("project") or "", get("key_id") or "", get("model") or "",
        get("requested_model") or "", get("vendor") or "", get("status", 0), get("cost_picousd"),
        get("input_tokens"), get("cache_read_tokens"), get("output_tokens"), json_or_empty("tags"),
        get("inbound", ""), get("stream", 0), json_or_empty("request_content"),
        json_or_empty("response_content"), get("response_cache") or "",
        "" if get("cache_saved_picousd") is None else get("cache_saved_picousd"),
        strongest_action(get("guardrails")), dumps(detail),
    )


def _detail_action(detail: Any) -> str:
    """The strongest guardrail action of a packed ``detail`` (a row spilled before the guardrail column)."""
    d = _loads(detail)
    return strongest_action(d[_D["guardrails"]]) if isinstance(d, list) and len(d) > _D["guardrails"] else ""


def as_rows(records: Iterable[Row | Mapping[str, Any]]) -> list[Row]:
    """Rows as they are; dicts converted."""
    return [r if r.__class__ is tuple else row_from_record(r) for r in records]  # type: ignore[arg-type]


def spill_line(row: Row) -> bytes:
    return orjson.dumps((SPILL_ROW, *row))


def from_spill(item: Any) -> Row | None:
    """A parsed spill-file line → a row (None when it is neither a row nor a record)."""
    if isinstance(item, list) and item and item[0] == SPILL_ROW:
        if len(item) == len(ROW_COLUMNS) + 1:
            return tuple(item[1:])
        if len(item) == _ROW_LEN_V3 + 1:  # spilled before the guardrail column: read from the detail
            return (*item[1:-1], _detail_action(item[-1]), item[-1])
        if len(item) == _ROW_LEN_V2 + 1:  # spilled before the response cache's columns: it was not on
            return (*item[1:-1], "", "", _detail_action(item[-1]), item[-1])
    if isinstance(item, dict) and "id" in item and "received_at" in item:
        return row_from_record(item)
    return None
