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

from interlock.catalog import count_tokens, estimate_chat_tokens
from interlock.core.cache import HIT
from interlock.core.canonical import CanonicalUsage
from interlock.core.codec import ESTIMATED
from interlock.core.context import RequestContext
from interlock.core.exchange import Exchange
from interlock.core.pricing import Usage, cost_of
from interlock.core.tags import parse_tags
from interlock.core.usage import usage_from_openai


class Ledger(Protocol):
    def settle(self, ctx: RequestContext) -> None: ...

    def wants_content(self, ctx: RequestContext) -> bool: ...


def price_usage(ctx: RequestContext, usage: Usage) -> float | None:
    """Record usage and its cost on the context; return the cost in USD (None when unpriced)."""
    ctx.usage = usage
    target = ctx.target
    cost = cost_of(target.price, usage) if target is not None and target.price is not None else None
    cache = ctx.cache
    if cache is not None and cache.status == HIT:
        cost = cache.charge(cost)  # a replayed answer: what it cost is saved, the caller pays a fraction
    ctx.cost = cost
    return cost.usd if cost is not None else None


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


def estimated_openai_usage(ctx: RequestContext, request: Mapping[str, Any], output_text: str) -> CanonicalUsage:
    """Estimate the usage (as :func:`estimate_usage`) and return it as the caller sees it.

    Canonical (OpenAI) usage with interlock's estimated cost when the route is
    priced, and ``estimated: true``: the same marker in every inbound format.
    """
    cost = estimate_usage(ctx, request, output_text)
    usage = ctx.usage
    assert usage is not None
    out: CanonicalUsage = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.output_tokens,
                           "total_tokens": usage.total_tokens}
    if cost is not None:
        out["cost"] = cost
    out[ESTIMATED] = True
    return out


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


def observe_request(ctx: RequestContext, req: Exchange, request: Mapping[str, Any], ledger: Ledger) -> None:
    """What the log needs from the request itself: tags, end user, trace parent, content if kept."""
    ctx.tags = parse_tags(req.header("x-interlock-tags"))
    user = request.get("user")
    ctx.end_user = user[:256] if isinstance(user, str) else None
    ctx.traceparent = req.header("traceparent")
    capture_content(ctx, request, ledger)


def capture_content(ctx: RequestContext, request: Mapping[str, Any], ledger: Ledger) -> None:
    """Keep the request's content when the log level asks for it (decided again once the project is known)."""
    ctx.capture_content = ledger.wants_content(ctx)
    ctx.request_content = dict(request) if ctx.capture_content else None
