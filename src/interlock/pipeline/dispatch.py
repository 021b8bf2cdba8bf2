"""Dispatch: send the canonical request to the plan's targets.

A non-streaming call returns a whole :class:`Completion`; a streaming call
returns the chunk source together with its first batch, so the caller commits
to the client only once content has arrived. Failing over between targets is
only allowed before that point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.pipeline.context import RequestContext
from interlock.pipeline.plan import Target
from interlock.vendors.adapter import ChunkSource, Completion
from interlock.vendors.registry import SIMULATOR_HEADERS


def forwarded_headers(headers: Any, target: Target) -> dict[str, str] | None:
    """Client headers a target receives: only the simulator's test-injection headers."""
    if not target.simulated:
        return None
    extra = {}
    for name in SIMULATOR_HEADERS:
        value = headers.get(name)
        if value is not None:
            extra[name] = str(value)
    return extra or None


class Dispatcher:
    async def complete(self, ctx: RequestContext, request: Mapping[str, Any], client_headers: Any) -> Completion:
        assert ctx.plan is not None
        target = ctx.target = ctx.plan.targets[0]
        return await target.vendor.adapter.complete(request, target.vendor_model,
                                                    forwarded_headers(client_headers, target))

    async def stream(self, ctx: RequestContext, request: Mapping[str, Any],
                     client_headers: Any) -> tuple[ChunkSource, list[bytes] | None]:
        assert ctx.plan is not None
        target = ctx.target = ctx.plan.targets[0]
        source = await target.vendor.adapter.stream(request, target.vendor_model,
                                                    forwarded_headers(client_headers, target))
        try:
            first = await source.next_batch()
        except BaseException:
            source.close()
            raise
        return source, first
