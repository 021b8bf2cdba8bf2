"""The cache stage: after routing and admission, look the request up in the response cache.

On a hit the pipeline replays the stored answer instead of calling a vendor (``pipeline/core.py``); on a miss
it stores the vendor's answer when the request completes. With ``cache.anthropic_auto_breakpoints`` the
stage also marks the stable prefix of requests routed to Anthropic for the vendor's prompt cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlock.cache.response_cache import ResponseCache
from interlock.core.context import RequestContext


class CacheStage:
    __slots__ = ("breakpoints", "cache")

    def __init__(self, cache: ResponseCache | None,
                 breakpoints: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.cache = cache
        self.breakpoints = breakpoints

    async def __call__(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        if self.cache is not None:
            ctx.cache = await self.cache.lookup(ctx, request)
        if self.breakpoints is not None and _anthropic_only(ctx):
            request = self.breakpoints(request)
        return request


def _anthropic_only(ctx: RequestContext) -> bool:
    """Every route that may be tried speaks Anthropic's Messages API: markers would reach an OpenAI-compatible
    vendor on failover otherwise (its adapter forwards ``cache_control`` as it is)."""
    trace = ctx.routing
    order = trace.order if trace is not None else ()
    return bool(order) and all(t.vendor.spec.type == "anthropic" for t in order)
