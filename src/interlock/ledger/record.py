"""One request → one log record: a flat dict of plain values.

Built on the hot path (from ``settle``), so it only reads attributes and does
arithmetic; JSON encoding of the nested parts (tags, attempts, content) happens
later, in the writer, off the event loop's critical path. What is never in a
record: the caller's key (only its id), request headers, vendor credentials
(scrubbed from messages and content, see :class:`Redactor`) and, unless the
content level is ``full`` and the request is not zero-data-retention, any
request or response content.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any

from interlock.errors import GatewayError

if TYPE_CHECKING:
    from interlock.pipeline.context import RequestContext

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


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of attempt / trace objects other stages put on the context.

    Routing (issue 6) owns those types; this keeps the log independent of their
    exact shape: dataclasses become dicts, a target becomes vendor + model, an
    error becomes its type and message.
    """
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if depth > 4:
        return str(value)
    if isinstance(value, GatewayError):
        return {"type": value.code or value.type, "status": value.status, "message": value.message}
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    to_json = getattr(value, "to_json", None)
    if callable(to_json):  # routing's Attempt / RoutingTrace know their own JSON shape
        return plain(to_json(), depth + 1)
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v, depth + 1) for v in value]
    vendor = getattr(value, "vendor", None)
    if vendor is not None and hasattr(value, "vendor_model"):  # a pipeline Target
        return {"vendor": getattr(vendor, "id", str(vendor)), "model": getattr(value, "model_id", None),
                "vendor_model": value.vendor_model}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), depth + 1) for f in fields(value)}
    return str(value)


def build_record(ctx: RequestContext, level: str, redactor: Redactor) -> dict[str, Any]:
    """The log record of a settled request (``level`` is already capped by zero data retention)."""
    done = time.time()
    target = ctx.target
    usage = ctx.usage
    cost = ctx.cost
    error = ctx.error
    principal = ctx.principal
    duration_ms = (time.perf_counter() - ctx.started) * 1000.0
    first_byte = ctx.first_byte
    ttft_ms = (first_byte - ctx.started) * 1000.0 if first_byte is not None else None
    output_tokens = usage.output_tokens if usage is not None else None
    output_tps: float | None = None
    if output_tokens:
        generation_ms = duration_ms - ttft_ms if ctx.stream and ttft_ms is not None else duration_ms
        if generation_ms > 0:
            output_tps = round(output_tokens * 1000.0 / generation_ms, 3)
    cache_read = usage.cache_read_tokens if usage is not None else None
    message = error.message if error is not None else None
    if message is not None:
        message = redactor.text(message)
    attempts = getattr(ctx, "attempts", None)
    trace = getattr(ctx, "routing", None) or getattr(ctx, "routing_trace", None)
    record: dict[str, Any] = {
        "id": ctx.id,
        "received_at": ctx.received_at,
        "first_byte_at": ctx.received_at + ttft_ms / 1000.0 if ttft_ms is not None else None,
        "done_at": done,
        "duration_ms": round(duration_ms, 3),
        "ttft_ms": round(ttft_ms, 3) if ttft_ms is not None else None,
        "output_tps": output_tps,
        "project": getattr(principal, "project", None),
        "key_id": (getattr(principal, "key_id", None) or principal.key_prefix) if principal is not None else None,
        "end_user": ctx.end_user,
        "tags": list(ctx.tags) if ctx.tags else None,
        "inbound": ctx.inbound,
        "requested_model": ctx.requested_model,
        "model": target.model_id if target is not None else None,
        "vendor": target.vendor.id if target is not None else None,
        "vendor_model": target.vendor_model if target is not None else None,
        "stream": int(ctx.stream),
        "status": 499 if ctx.client_disconnected else ctx.status,
        "error_type": error.code or error.type if error is not None else (
            "client_disconnected" if ctx.client_disconnected else None),
        "error_message": message,
        "input_tokens": usage.input_tokens if usage is not None else None,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": usage.cache_write_tokens if usage is not None else None,
        "output_tokens": output_tokens,
        "reasoning_tokens": usage.reasoning_tokens if usage is not None else None,
        "cost_picousd": cost.picousd if cost is not None else None,
        "cost_estimated": int(cost.estimated) if cost is not None else 0,
        "cache_hit": int(bool(getattr(ctx, "cache_hit", False) or cache_read)),
        "simulated": int(target.simulated) if target is not None else 0,
        # Routing's objects as they are (made plain off the hot path, in plain_attempts).
        "attempts": list(attempts) if attempts else None,
        "_t0": ctx.started,
        "guardrails": list(ctx.guardrail_actions) if ctx.guardrail_actions else None,
        "explanation": "; ".join(ctx.plan.explanation) if ctx.plan is not None else None,
        "routing_trace": trace if trace else None,
        "content_level": level,
        "request_content": None,
        "response_content": None,
    }
    if level == "full" and ctx.capture_content:
        record["request_content"] = ctx.request_content
        record["response_content"] = ctx.response_content
    return record


def finish_record(record: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """The off-hot-path half, run by the writer: explanation, and credentials scrubbed.

    Routing's objects stay objects: the store's JSON encoder (orjson, in C) calls their
    ``to_json``. Only a failed attempt carries free text (the vendor's error message), so
    only then are attempts and trace made plain and scrubbed - or, under zero data
    retention, stripped of messages.
    """
    attempts = record.get("attempts")
    trace = record.get("routing_trace")
    if trace is not None:
        reason = trace.outcome_reason() if hasattr(trace, "outcome_reason") else (
            trace.get("reason") if isinstance(trace, dict) else None)
        if isinstance(reason, str):
            plan = record.get("explanation")
            record["explanation"] = reason + (f" ({plan})" if plan else "")
    zdr = record.get("content_level") == "zdr"
    if attempts and (zdr or any(_has_error(a) for a in attempts)):
        record["attempts"] = redactor.deep(plain_attempts(record))
        if trace is not None:
            record["routing_trace"] = redactor.deep(plain(trace))
        if zdr:
            for key in ("attempts", "routing_trace"):
                if record.get(key) is not None:
                    record[key] = _without_messages(record[key])
    for key in ("request_content", "response_content"):
        if record.get(key) is not None:
            record[key] = redactor.deep(record[key])
    return record


def _has_error(attempt: Any) -> bool:
    if isinstance(attempt, Mapping):
        return bool(attempt.get("error"))
    return bool(getattr(attempt, "error", None))


def json_default(value: Any) -> Any:
    """orjson's fallback for routing's objects (dataclasses are passed through to here)."""
    to_json = getattr(value, "to_json", None)
    return to_json() if callable(to_json) else plain(value)


def _without_messages(value: Any) -> Any:
    """Zero data retention: vendor error messages may quote the prompt, so none are kept."""
    if isinstance(value, dict):
        return {k: _without_messages(v) for k, v in value.items() if k not in ("message", "error_message")}
    if isinstance(value, list):
        return [_without_messages(v) for v in value]
    return value


def plain_attempts(record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Attempts as JSON, each with ``start_ms`` (since the request arrived) when its start is known.

    Idempotent: the writer and the tracer both call it on the same record.
    """
    attempts = record.get("attempts")
    if not attempts:
        return None
    t0 = record.get("_t0")
    out: list[dict[str, Any]] = []
    for attempt in attempts:
        item = plain(attempt)
        if not isinstance(item, dict):
            item = {"value": item}
        started = getattr(attempt, "started", None)
        if isinstance(started, float) and isinstance(t0, float) and abs(started - t0) < 86400.0:
            item["start_ms"] = round((started - t0) * 1000.0, 3)
        out.append(item)
    return out
