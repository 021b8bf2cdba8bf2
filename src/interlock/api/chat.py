"""``POST /v1/chat/completions``: the pipeline for the OpenAI Chat Completions format.

inbound codec (parse, validate) → context (who) → admit → plan → dispatch →
settle, with the outbound codec writing JSON or SSE. A stream is committed to
the client only once the vendor's first chunk is in hand, so every failure
before that point still gets a proper HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from interlock.errors import GatewayError, UpstreamError
from interlock.pipeline.context import RequestContext
from interlock.pipeline.settle import (
    completion_output_text,
    estimate_usage,
    price_openai_usage,
    settle,
    stream_output_text,
)
from interlock.server.http import CLIENT_GONE, Request, StreamTransport
from interlock.vendors.registry import SIMULATOR_HEADERS
from interlock.wire.openai_chat import ChunkWriter, error_body, parse_json_object, validate_chat_request

if TYPE_CHECKING:
    from interlock.app import Gateway
    from interlock.pipeline.plan import Target

log = logging.getLogger("interlock.chat")

_SSE_HEADERS = [("content-type", "text/event-stream"), ("cache-control", "no-cache"), ("x-accel-buffering", "no")]


class ChatCompletions:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def __call__(self, req: Request) -> None:
        gw = self.gw
        ctx = RequestContext("openai.chat")
        task = asyncio.current_task()
        watcher = asyncio.ensure_future(req.proto.client_disconnect())

        def on_disconnect(_: object) -> None:
            ctx.client_disconnected = True
            if task is not None and not req.responded:
                task.cancel()

        watcher.add_done_callback(on_disconnect)
        try:
            await self._handle(req, ctx)
        except GatewayError as err:
            ctx.fail(err)
            if not req.responded:
                headers = [("content-type", "application/json"), *ctx.response_headers(), *err.headers.items()]
                req.send(err.status, error_body(err), headers)
        except asyncio.CancelledError:
            if not ctx.client_disconnected:
                raise
            # We cancelled ourselves because the client left: the upstream call is aborted.
            if task is not None:
                task.uncancel()
        finally:
            watcher.remove_done_callback(on_disconnect)
            watcher.cancel()
            settle(ctx, gw.ledger)

    async def _handle(self, req: Request, ctx: RequestContext) -> None:
        gw = self.gw
        ctx.principal = gw.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        request = parse_json_object(await req.body(gw.settings.server.max_body_bytes))
        validate_chat_request(request)
        ctx.requested_model = request["model"]
        ctx.stream = request.get("stream") is True
        ctx.plan = plan = gw.planner.plan(request["model"])
        target = ctx.target = plan.targets[0]
        extra = self._forwarded_headers(req, target)
        if ctx.stream:
            await self._stream(req, ctx, request, target, extra)
        else:
            await self._complete(req, ctx, request, target, extra)

    @staticmethod
    def _forwarded_headers(req: Request, target: Target) -> dict[str, str] | None:
        if not target.simulated:
            return None
        extra = {}
        for name in SIMULATOR_HEADERS:
            value = req.header(name)
            if value is not None:
                extra[name] = value
        return extra or None

    async def _complete(self, req: Request, ctx: RequestContext, request: dict[str, Any], target: Target,
                        extra: dict[str, str] | None) -> None:
        completion = await target.vendor.adapter.complete(request, target.vendor_model, extra)
        ctx.first_byte = time.perf_counter()
        data = completion.data
        usage = data.get("usage")
        headers = [("content-type", "application/json"), *ctx.response_headers()]
        if isinstance(usage, dict):
            cost = price_openai_usage(ctx, usage)
            if cost is not None:
                usage["cost"] = cost
        else:
            cost = estimate_usage(ctx, request, completion_output_text(data))
        if ctx.cost is not None:
            headers.append(("x-interlock-cost-usd", ctx.cost.usd_str))
            if ctx.cost.estimated:
                headers.append(("x-interlock-cost-estimated", "true"))
        req.send(200, orjson.dumps(data), headers)

    async def _stream(self, req: Request, ctx: RequestContext, request: dict[str, Any], target: Target,
                      extra: dict[str, str] | None) -> None:
        chunks = await target.vendor.adapter.stream(request, target.vendor_model, extra)
        # Payloads are kept only until usage arrives, to estimate tokens if it never does.
        seen: list[bytes] = []
        stream_out: StreamTransport | None = None
        try:
            batch = await chunks.next_batch()
            options = request.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            writer = ChunkWriter(include_usage, lambda usage: price_openai_usage(ctx, usage))
            stream_out = req.stream(200, [*_SSE_HEADERS, *ctx.response_headers()])
            ctx.first_byte = time.perf_counter()
            failure: GatewayError | None = None
            try:
                while batch is not None:
                    if not writer.usage_seen:
                        seen.extend(batch)
                    data = writer.encode(batch)
                    if data:
                        await stream_out.send_bytes(data)
                    batch = await chunks.next_batch()
                if chunks.truncated:
                    failure = UpstreamError(f"{target.vendor.config.spec.name} ended the stream before it was complete",
                                            code="upstream_stream_truncated")
            except GatewayError as err:
                failure = err.with_traceback(None)
            if failure is not None:
                # Headers are gone: the error travels as an event, the way OpenAI reports mid-stream errors.
                ctx.fail(failure)
                await stream_out.send_bytes(b"data: " + error_body(failure) + b"\n\n")
            else:
                await stream_out.send_bytes(writer.done())
        except CLIENT_GONE:
            ctx.client_disconnected = True
        finally:
            # Granian ends the response when the transport is released: never let a
            # reference cycle keep it (and the client) waiting for a GC pass.
            stream_out = None
            chunks.close()
            if ctx.usage is None and ctx.first_byte is not None:
                estimate_usage(ctx, request, stream_output_text(seen))
