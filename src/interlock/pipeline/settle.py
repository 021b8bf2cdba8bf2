"""Settle: turn usage into exact cost and hand one record to the ledger.

It runs for every request - success, failure, client disconnect - from the
handler's ``finally``. Nothing here awaits: the ledger queues the record.
When a vendor gave no usage (a stream cut short, a vendor that omits it) the
tokens are estimated and the cost is marked as estimated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from interlock.catalog import Usage, cost_of, count_tokens, estimate_chat_tokens, usage_from_openai
from interlock.pipeline.context import RequestContext


class Ledger(Protocol):
    def submit(self, record: Mapping[str, Any]) -> None: ...


def price_usage(ctx: RequestContext, usage: Usage) -> float | None:
    """Record usage and its cost on the context; return the cost in USD (None when unpriced)."""
    ctx.usage = usage
    target = ctx.target
    if target is None or target.price is None:
        ctx.cost = None
        return None
    ctx.cost = cost_of(target.price, usage)
    return ctx.cost.usd


def price_openai_usage(ctx: RequestContext, usage: Mapping[str, Any]) -> float | None:
    return price_usage(ctx, usage_from_openai(usage))


def estimate_usage(ctx: RequestContext, request: Mapping[str, Any], output_text: str) -> float | None:
    """Estimate tokens when the vendor reported none; the cost is then marked estimated."""
    model = ctx.target.model if ctx.target is not None else None
    usage = Usage(
        input_tokens=estimate_chat_tokens(request, model),
        output_tokens=count_tokens(output_text, model) if output_text else 0,
        estimated=True,
    )
    return price_usage(ctx, usage)


def stream_output_text(payloads: list[bytes]) -> str:
    """The text (content, reasoning and tool arguments) carried by canonical chunks, for estimation."""
    parts: list[str] = []
    for payload in payloads:
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            continue
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            for key in ("content", "reasoning_content", "reasoning", "refusal"):
                value = delta.get(key)
                if isinstance(value, str):
                    parts.append(value)
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    parts.append(str(function.get("name") or ""))
                    parts.append(str(function.get("arguments") or ""))
    return "".join(parts)


def completion_output_text(data: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for choice in data.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                parts.append(str(function.get("name") or ""))
                parts.append(str(function.get("arguments") or ""))
    return "".join(parts)


def settle(ctx: RequestContext, ledger: Ledger) -> None:
    target = ctx.target
    usage = ctx.usage
    cost = ctx.cost
    error = ctx.error
    ledger.submit({
        "id": ctx.id,
        "received_at": ctx.received_at,
        "duration_ms": round(ctx.elapsed_ms, 3),
        "ttft_ms": round((ctx.first_byte - ctx.started) * 1000.0, 3) if ctx.first_byte is not None else None,
        "inbound": ctx.inbound,
        "requested_model": ctx.requested_model,
        "model": target.model_id if target is not None else None,
        "vendor": target.vendor.id if target is not None else None,
        "vendor_model": target.vendor_model if target is not None else None,
        "stream": int(ctx.stream),
        "status": 499 if ctx.client_disconnected else ctx.status,
        "error_type": error.code if error is not None else ("client_disconnected" if ctx.client_disconnected else None),
        "error_message": error.message if error is not None else None,
        "input_tokens": usage.input_tokens if usage is not None else None,
        "cache_read_tokens": usage.cache_read_tokens if usage is not None else None,
        "cache_write_tokens": usage.cache_write_tokens if usage is not None else None,
        "output_tokens": usage.output_tokens if usage is not None else None,
        "reasoning_tokens": usage.reasoning_tokens if usage is not None else None,
        "cost_picousd": cost.picousd if cost is not None else None,
        "cost_estimated": int(cost.estimated) if cost is not None else 0,
        "simulated": int(target.simulated) if target is not None else 0,
        "explanation": "; ".join(ctx.plan.explanation) if ctx.plan is not None else None,
    })
