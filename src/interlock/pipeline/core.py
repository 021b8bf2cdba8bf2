"""The request pipeline, once for every inbound format.

who (:class:`~interlock.pipeline.stages.Identify`) → inbound codec (parse) → stages (route, admit,
capture: ``pipeline/stages.py``) → dispatch → outbound codec (write) → settle. A stream is committed to the client only once
the vendor's first chunk is in hand, so every failure before that point still
gets a proper HTTP status; later failures become an error event in the
caller's format. Settle always runs.
"""

from __future__ import annotations

import time
from typing import Any, cast

import orjson

from interlock.core import exchange
from interlock.core.cache import HIT
from interlock.core.canonical import ChatCompletion, ChatRequest
from interlock.core.codec import InboundCodec, set_cost
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, UpstreamError
from interlock.core.exchange import Exchange, StreamOut
from interlock.pipeline.dispatch import Dispatcher
from interlock.pipeline.settle import (
    Ledger,
    completion_output_text,
    estimate_usage,
    estimated_openai_usage,
    observe_request,
    price_openai_usage,
    stream_output_text,
)
from interlock.pipeline.stages import AnyStage, Identifies, Lifecycle, bind


class Pipeline:
    """One route's handler: the request path bound to an inbound codec."""

    def __init__(self, codec: InboundCodec, lifecycle: Lifecycle, identify: Identifies, stages: tuple[AnyStage, ...],
                 dispatcher: Dispatcher, ledger: Ledger, max_body: int) -> None:
        self.codec = codec
        self.lifecycle = lifecycle
        self.identify = identify
        self.stages = bind(stages)
        self.dispatcher = dispatcher
        self.ledger = ledger
        self.max_body = max_body
        self._stream_headers = [("content-type", codec.stream_content_type), ("cache-control", "no-cache"),
                                ("x-accel-buffering", "no")]

    async def __call__(self, req: Exchange) -> None:
        ctx = RequestContext(self.codec.name)
        await self.lifecycle.run(req, ctx, self._run, self.codec.render_error)

    async def _run(self, req: Exchange, ctx: RequestContext) -> None:
        self.identify(req, ctx)
        ctx.exchange = req
        # Routing, governance and dispatch still take a plain dict: the codec's ChatRequest is cast here, and back
        # for the codec's answer (a cast is free of copies).
        request = cast("dict[str, Any]", await self.codec.parse(await req.body(self.max_body), ctx))
        ctx.requested_model = request["model"]
        ctx.stream = request.get("stream") is True
        observe_request(ctx, req, request, self.ledger)
        for stage, awaited in self.stages:
            request = await stage(ctx, request) if awaited else stage(ctx, request)
        if ctx.stream:
            await self._stream(req, ctx, request)
        else:
            await self._complete(req, ctx, request)

    async def _complete(self, req: Exchange, ctx: RequestContext, request: dict[str, Any]) -> None:
        cache = ctx.cache
        if cache is not None and cache.status == HIT:
            completion = cache.completion()
        else:
            completion = await self.dispatcher.complete(ctx, request, req.headers)
        ctx.first_byte = time.perf_counter()
        data = completion.data
        usage = data.get("usage")
        if isinstance(usage, dict):
            set_cost(usage, price_openai_usage(ctx, usage))
        else:
            data["usage"] = estimated_openai_usage(ctx, request, completion_output_text(data))
        # The vendor's answer as it came, before guardrails redact it: a replay is screened by today's policy.
        # Without answer guardrails, a codec whose body is the canonical JSON sends what the cache stores.
        answer = ctx.answer
        storing = cache is not None and cache.storing
        stored = orjson.dumps(data) if storing and (answer is not None or not self.codec.canonical_body) else None
        if answer is not None:
            try:
                answer.screen(data)  # redacts in place, or raises the block
            finally:
                answer.settle(ctx)
        if stored is not None and cache is not None:
            cache.store_completion(ctx, stored)
        headers = [("content-type", "application/json"), *ctx.response_headers()]
        if ctx.cost is not None:
            headers.append(("x-interlock-cost-usd", ctx.cost.usd_str))
            if ctx.cost.estimated:
                headers.append(("x-interlock-cost-estimated", "true"))
        if completion.dropped:
            headers.append(("x-interlock-dropped-params", ",".join(completion.dropped)))
        if ctx.capture_content:
            ctx.response_content = data
        if answer is not None and answer.restoring:
            if ctx.capture_content:  # the log keeps placeholders, not the values put back for the caller
                ctx.response_content = orjson.loads(orjson.dumps(data))
            answer.restore(data)
        body = self.codec.completion(ctx, cast("ChatRequest", request), cast("ChatCompletion", data))
        if storing and stored is None and cache is not None:
            cache.store_completion(ctx, body)
        req.send(200, body, headers)

    async def _stream(self, req: Exchange, ctx: RequestContext, request: dict[str, Any]) -> None:
        cache = ctx.cache
        if cache is not None and cache.status == HIT:
            source = cache.source()
            batch = await source.next_batch()
        else:
            source, batch = await self.dispatcher.stream(ctx, request, req.headers)
        screen = ctx.answer.stream() if ctx.answer is not None else None
        # Payloads are kept only until usage arrives, to estimate tokens if it never does.
        seen: list[bytes] = []
        # The vendor's payloads as they came (before guardrails), when the completed stream is to be stored.
        stored: list[bytes] | None = [] if cache is not None and cache.storing else None
        out: StreamOut | None = None
        try:
            encoder = self.codec.stream_encoder(ctx, cast("ChatRequest", request),
                                                lambda usage: price_openai_usage(ctx, usage))
            headers = [*self._stream_headers, *ctx.response_headers()]
            if source.dropped:
                headers.append(("x-interlock-dropped-params", ",".join(source.dropped)))
            out = req.stream(200, headers)
            ctx.first_byte = time.perf_counter()
            failure: GatewayError | None = None
            try:
                while batch is not None:
                    if stored is not None:
                        stored.extend(batch)
                    if screen is not None:
                        batch = screen.feed(batch)
                    if not encoder.usage_seen or ctx.capture_content:
                        seen.extend(batch)
                    data = encoder.encode(batch)
                    if data:
                        await out.send_bytes(data)
                    if encoder.failed:  # it wrote the error event and recorded the failure
                        break
                    if screen is not None and screen.blocked is not None:
                        break
                    batch = await source.next_batch()
                if screen is not None and screen.blocked is None and not encoder.failed:
                    held = screen.finish()  # the vendor is done (or cut short): what was held, scanned
                    if not encoder.usage_seen or ctx.capture_content:
                        seen.extend(held)
                    data = encoder.encode(held)
                    if data:
                        await out.send_bytes(data)
                if screen is not None and screen.blocked is not None:
                    failure = screen.blocked
                elif source.truncated and not encoder.failed:
                    assert ctx.target is not None
                    failure = UpstreamError(f"{ctx.target.vendor.spec.name} ended the stream before it was "
                                            "complete", code="upstream_stream_truncated")
            except GatewayError as err:
                failure = err.with_traceback(None)
            except Exception as exc:  # noqa: BLE001 - a bug mid-stream: the format's error event, logged
                failure = self.lifecycle.errors.report(req, ctx, exc)
            if failure is not None:
                ctx.fail(failure)
                await out.send_bytes(encoder.error(failure))
            elif not encoder.failed:
                estimated = None if encoder.usage_seen else estimated_openai_usage(ctx, request,
                                                                                   stream_output_text(seen))
                await out.send_bytes(encoder.finish(estimated))
                if stored is not None and cache is not None and not ctx.client_disconnected:
                    cache.store_stream(ctx, stored)  # complete, relayed in full, not blocked
        except exchange.CLIENT_GONE:
            ctx.client_disconnected = True
        finally:
            # Granian ends the response when the transport is released: never let a
            # reference cycle keep it (and the client) waiting for a GC pass.
            out = None
            source.close()
            if ctx.usage is None and ctx.first_byte is not None:
                estimate_usage(ctx, request, stream_output_text(seen))
            if ctx.capture_content:
                logged = screen.log_text() if screen is not None else None
                ctx.response_content = stream_output_text(seen) if logged is None else logged
            if ctx.answer is not None:
                ctx.answer.settle(ctx)
