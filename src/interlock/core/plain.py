"""JSON-ready copies of the objects stages put on a request's context (attempts, traces, targets, errors).

The request log and the tracer both record them; this keeps both independent of those objects' exact
shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from interlock.core.errors import GatewayError


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of attempt / trace objects other stages put on the context.

    Dataclasses become dicts, a target becomes vendor + model, an
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


def plain_attempts(record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Attempts as JSON, each with ``start_ms`` (since the request arrived) when its start is known.

    What the tracer reads from a record (``observability/tracing.py``); idempotent.
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
