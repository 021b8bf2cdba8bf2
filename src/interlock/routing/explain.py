"""Rendering routing decisions: ``POST /v1/route/explain`` and ``GET /v1/generation``.

``/v1/generation`` answers in OpenRouter's shape (``{"data": {...}}`` with
``tokens_prompt``, ``total_cost``, ``provider_responses``...) so tools built
for it work, plus interlock's full ``routing`` trace. The same function
renders a request still in memory and one read back from the request log,
so the answer does not change when the batch flush happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from interlock.core.context import RequestContext
from interlock.core.trace import RoutingTrace

PICO = 10**12


class GenerationRecord:
    """What ``/v1/generation`` needs of a finished request, kept by reference (no content).

    Taking the snapshot is a handful of attribute copies on the hot path; the
    request-log-shaped row is built only when someone asks (:meth:`row`).
    Under zero data retention error texts are left out, as the log leaves them
    out (vendors quote prompts in them).
    """

    __slots__ = ("cost", "disconnected", "duration_ms", "error", "first_byte_ms", "id", "key_id", "project",
                 "received_at", "requested_model", "status", "stream", "target", "trace", "usage", "zdr")

    def __init__(self, ctx: RequestContext, trace: RoutingTrace) -> None:
        principal = ctx.principal
        self.id = ctx.id
        self.key_id = (getattr(principal, "key_id", None) or principal.key_prefix) if principal is not None else None
        self.project = principal.project if principal is not None else None
        self.zdr = ctx.zero_data_retention
        self.received_at = ctx.received_at
        self.duration_ms = ctx.elapsed_ms
        self.first_byte_ms = (ctx.first_byte - ctx.started) * 1000.0 if ctx.first_byte is not None else None
        self.requested_model = ctx.requested_model
        self.target = ctx.target
        self.stream = ctx.stream
        self.status = 499 if ctx.client_disconnected else ctx.status
        self.error = ctx.error
        self.usage = ctx.usage
        self.cost = ctx.cost
        self.trace = trace

    def row(self) -> dict[str, Any]:
        """The request-log fields ``/v1/generation`` renders (same names as the log's columns)."""
        target = self.target
        usage = self.usage
        cost = self.cost
        error = self.error
        return {
            "id": self.id,
            "key_id": self.key_id,
            "project": self.project,
            "received_at": self.received_at,
            "duration_ms": round(self.duration_ms, 3),
            "ttft_ms": round(self.first_byte_ms, 3) if self.first_byte_ms is not None else None,
            "requested_model": self.requested_model,
            "model": target.model_id if target is not None else None,
            "vendor": target.vendor_id if target is not None else None,
            "vendor_model": target.vendor_model if target is not None else None,
            "stream": int(self.stream),
            "status": self.status,
            "error_type": error.code if error is not None else None,
            "error_message": error.message if error is not None and not self.zdr else None,
            "input_tokens": usage.input_tokens if usage is not None else None,
            "cache_read_tokens": usage.cache_read_tokens if usage is not None else None,
            "cache_write_tokens": usage.cache_write_tokens if usage is not None else None,
            "output_tokens": usage.output_tokens if usage is not None else None,
            "reasoning_tokens": usage.reasoning_tokens if usage is not None else None,
            "cost_picousd": cost.picousd if cost is not None else None,
            "cost_estimated": int(cost.estimated) if cost is not None else 0,
            # The trace object itself: rendered to JSON only when the answer is written.
            "routing_trace": _without_errors(self.trace.to_json()) if self.zdr else self.trace,
        }


def _without_errors(trace: dict[str, Any]) -> dict[str, Any]:
    for attempt in trace.get("attempts") or ():
        if isinstance(attempt, dict):
            attempt.pop("error", None)
    return trace


def _int(row: Mapping[str, Any], key: str) -> int | None:
    value = row.get(key)
    return int(value) if value is not None else None


def generation(row: Mapping[str, Any]) -> dict[str, Any]:
    """OpenRouter's generation object from a request-log row (``routing_trace`` as dict or JSON text)."""
    trace = row.get("routing_trace")
    if isinstance(trace, RoutingTrace):
        trace = trace.to_json()
    elif isinstance(trace, str | bytes):
        trace = orjson.loads(trace)
    if not isinstance(trace, dict):
        trace = None
    prompt = sum(_int(row, k) or 0 for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens"))
    completion = _int(row, "output_tokens")
    cost = _int(row, "cost_picousd")
    duration = row.get("duration_ms")
    ttft = row.get("ttft_ms")
    received = row.get("received_at")
    attempts = trace.get("attempts", []) if trace else []
    return {
        "id": row.get("id"),
        "created_at": datetime.fromtimestamp(float(received), UTC).isoformat() if received is not None else None,
        "model": row.get("model"),
        "requested_model": row.get("requested_model"),
        "provider_name": row.get("vendor"),
        "vendor_model": row.get("vendor_model"),
        "streamed": bool(row.get("stream")),
        "cancelled": row.get("status") == 499,
        "status": row.get("status"),
        "error": row.get("error_message"),
        "error_code": row.get("error_type"),
        "latency": ttft,
        "generation_time": round(float(duration) - float(ttft), 3) if duration is not None and ttft is not None
        else duration,
        "total_duration": duration,
        "tokens_prompt": prompt if completion is not None else None,
        "tokens_completion": completion,
        "native_tokens_prompt": prompt if completion is not None else None,
        "native_tokens_completion": completion,
        "native_tokens_reasoning": _int(row, "reasoning_tokens"),
        "native_tokens_cached": _int(row, "cache_read_tokens"),
        "total_cost": cost / PICO if cost is not None else None,
        "usage": cost / PICO if cost is not None else None,
        "cost_estimated": bool(row.get("cost_estimated")),
        "router": trace.get("policy") if trace else None,
        "provider_responses": [
            {"provider_name": a.get("vendor"), "model_permaslug": a.get("model"), "status": a.get("status"),
             "latency": a.get("latency_ms"), "endpoint_id": a.get("target")}
            for a in attempts
        ],
        "routing": trace,
    }


def explain(trace: RoutingTrace) -> dict[str, Any]:
    """``POST /v1/route/explain``: the decision, without calling any vendor."""
    order = trace.order
    prices = {}
    for c in trace.candidates:
        price = c.target.price
        if price is not None and price.known:
            assert price.input is not None and price.output is not None
            prices[c.target.key] = {"input_per_m": price.input / 1e6, "output_per_m": price.output / 1e6}
    body = trace.to_json()
    body.pop("attempts", None)
    body["object"] = "route.explanation"
    body["route"] = order[0].key if order else None
    tiers = {c.target.key: c.tier for c in trace.candidates if c.tier is not None}
    body["plan"] = [
        {"rank": i + 1, "target": t.key, "vendor": t.vendor.id, "vendor_model": t.vendor_model, "model": t.model_id,
         "simulated": t.simulated, "context_window": t.context_window, "price": prices.get(t.key),
         **({"tier": tiers[t.key]} if t.key in tiers else {})}
        for i, t in enumerate(order)
    ]
    body["retry"] = ({"attempts": trace.retry.attempts, "backoff_s": trace.retry.backoff_s,
                      "max_backoff_s": trace.retry.max_backoff_s,
                      "max_retry_after_s": trace.retry.max_retry_after_s} if trace.retry is not None else None)
    body["timeout_s"] = trace.timeout_s
    return body
