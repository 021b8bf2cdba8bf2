"""The request pipeline, once for every inbound format.

inbound codec (parse) → context (who) → plan → admit (limits, budget reservation) → dispatch →
outbound codec (write) → settle. A stream is committed to the client only once
the vendor's first chunk is in hand, so every failure before that point still
gets a proper HTTP status; later failures become an error event in the
caller's format. Settle always runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from interlock.core.codec import InboundCodec, set_cost
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, InternalError, UpstreamError
from interlock.core.timers import running_loop
from interlock.observability import zdr_log
from interlock.pipeline.settle import (
    capture_content,
    completion_output_text,
    estimate_usage,
    estimated_openai_usage,
    observe_request,
    price_openai_usage,
    settle,
    stream_output_text,
)
from interlock.server.http import CLIENT_GONE, Request, StreamTransport

if TYPE_CHECKING:
    from interlock.app import Gateway
    from interlock.core.canonical import ChatCompletion, ChatRequest

log = logging.getLogger("interlock")


def report_internal(gw: Gateway, req: Request, ctx: RequestContext, exc: BaseException) -> InternalError:
    """A bug reached the top of a request: log it under the request id, count it, fail the context with a 500.

    The log line names the request id (the client sees it in ``x-interlock-request-id``
    and the error message) and carries the traceback; under zero data retention
    ``observability/zdr_log`` keeps only its frames and the exception's class, since
    an exception's text may quote the prompt. The request-log record gets status
    500 and the class.
    """
    route = gw.router.match(req.path)
    gw.internal_errors.inc((route.label if route is not None else "unmatched",))
    if ctx.zero_data_retention:
        zdr_log.mark(True)  # whatever marked the task before, this request's traceback withholds its texts
    log.error("internal error on %s %s, request id %s", req.scope.method, req.path, ctx.id, exc_info=exc)
    exc.__traceback__ = None  # its frames reference the context: no cycle left for the GC
    err = InternalError(f"The gateway hit an internal error ({type(exc).__name__}); it is logged under request id "
                        f"{ctx.id}.")
    ctx.fail(err)
    return err


def answer_internal(gw: Gateway, req: Request, ctx: RequestContext, exc: BaseException,
                    render_error: Callable[[GatewayError], bytes]) -> None:
    """:func:`report_internal`, then the 500 in the caller's format, with the request id, if nothing was sent yet."""
    err = report_internal(gw, req, ctx, exc)
    if not req.responded:
        req.send(err.status, render_error(err), [("content-type", "application/json"), *ctx.response_headers()])


async def run_request(gw: Gateway, req: Request, ctx: RequestContext,
                      run: Callable[[Request, RequestContext], Awaitable[None]],
                      render_error: Callable[[GatewayError], bytes]) -> None:
    """The lifecycle every inference request shares, whatever its API.

    A client that disconnects before the answer is complete cancels the work
    (which aborts the vendor call); a :class:`GatewayError` becomes an error in
    the caller's format; and routing statistics, the governance reservation and
    the request log are settled whatever happened.
    """
    task = asyncio.current_task(running_loop())
    # Granian's disconnect future takes callbacks directly: no watcher task per request.
    watcher = req.proto.client_disconnect()

    def on_disconnect(_: object) -> None:
        ctx.client_disconnected = True
        if task is not None and not req.responded:
            task.cancel()

    watcher.add_done_callback(on_disconnect)
    try:
        await run(req, ctx)
    except GatewayError as err:
        ctx.fail(err)
        if not req.responded:
            headers = [("content-type", "application/json"), *ctx.response_headers(), *err.headers.items()]
            req.send(err.status, render_error(err), headers)
    except asyncio.CancelledError:
        if not ctx.client_disconnected:
            raise
        # We cancelled ourselves because the client left: the upstream call is aborted.
        if task is not None:
            task.uncancel()
    except Exception as exc:  # noqa: BLE001 - a bug: a 500 with the request id, logged, counted, recorded below
        answer_internal(gw, req, ctx, exc, render_error)
    finally:
        watcher.remove_done_callback(on_disconnect)
        watcher.cancel()
        gw.routing.observe(ctx)
        gw.governance.settle(ctx, ctx.reservation)
        settle(ctx, gw.ledger)


def identify(gw: Gateway, req: Request, ctx: RequestContext) -> None:
    """Who is calling, and whether zero data retention applies to this request.

    Decided first, before the body is parsed: ZDR (``logging.zero_data_retention``, or the project's own
    ``zero_data_retention``) governs every later stage - no content captured for the log, no Responses
    state stored, no error text kept.
    """
    principal = gw.auth.authenticate(req.header("authorization"), req.header("x-api-key"),
                                     req.header("x-interlock-project"))
    ctx.principal = principal
    ctx.zero_data_retention = principal.zero_data_retention or gw.obs.log_settings.zero_data_retention
    zdr_log.mark(ctx.zero_data_retention)  # a traceback logged from this task then withholds exception texts


class Pipeline:
    """One route's handler: the pipeline bound to an inbound codec."""

    def __init__(self, gateway: Gateway, codec: InboundCodec) -> None:
        self.gw = gateway
        self.codec = codec
        self._stream_headers = [("content-type", codec.stream_content_type), ("cache-control", "no-cache"),
                                ("x-accel-buffering", "no")]

    async def __call__(self, req: Request) -> None:
        ctx = RequestContext(self.codec.name)
        await run_request(self.gw, req, ctx, self._run, self.codec.render_error)

    async def _run(self, req: Request, ctx: RequestContext) -> None:
        gw = self.gw
        identify(gw, req, ctx)
        # Routing, governance and dispatch still take a plain dict: the codec's ChatRequest is cast here, and back
        # for the codec's answer (a cast is free of copies).
        request = cast("dict[str, Any]", await self.codec.parse(await req.body(gw.settings.server.max_body_bytes), ctx))
        ctx.requested_model = request["model"]
        ctx.stream = request.get("stream") is True
        observe_request(ctx, req, request, gw.ledger)
        request = gw.routing.route(ctx, request)
        ctx.reservation = await gw.governance.admit(ctx, request)
        if ctx.log_level is not None:
            capture_content(ctx, request, gw.ledger)
        if ctx.stream:
            await self._stream(req, ctx, request)
        else:
            await self._complete(req, ctx, request)

    async def _complete(self, req: Request, ctx: RequestContext, request: dict[str, Any]) -> None:
        completion = await self.gw.dispatcher.complete(ctx, request, req.headers)
        ctx.first_byte = time.perf_counter()
        data = completion.data
        usage = data.get("usage")
        if isinstance(usage, dict):
            set_cost(usage, price_openai_usage(ctx, usage))
        else:
            data["usage"] = estimated_openai_usage(ctx, request, completion_output_text(data))
        headers = [("content-type", "application/json"), *ctx.response_headers()]
        if ctx.cost is not None:
            headers.append(("x-interlock-cost-usd", ctx.cost.usd_str))
            if ctx.cost.estimated:
                headers.append(("x-interlock-cost-estimated", "true"))
        if completion.dropped:
            headers.append(("x-interlock-dropped-params", ",".join(completion.dropped)))
        if ctx.capture_content:
            ctx.response_content = data
        req.send(200, self.codec.completion(ctx, cast("ChatRequest", request), cast("ChatCompletion", data)), headers)

    async def _stream(self, req: Request, ctx: RequestContext, request: dict[str, Any]) -> None:
        source, batch = await self.gw.dispatcher.stream(ctx, request, req.headers)
        # Payloads are kept only until usage arrives, to estimate tokens if it never does.
        seen: list[bytes] = []
        out: StreamTransport | None = None
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
                    if not encoder.usage_seen or ctx.capture_content:
                        seen.extend(batch)
                    data = encoder.encode(batch)
                    if data:
                        await out.send_bytes(data)
                    if encoder.failed:  # it wrote the error event and recorded the failure
                        break
                    batch = await source.next_batch()
                if source.truncated and not encoder.failed:
                    assert ctx.target is not None
                    failure = UpstreamError(f"{ctx.target.vendor.spec.name} ended the stream before it was "
                                            "complete", code="upstream_stream_truncated")
            except GatewayError as err:
                failure = err.with_traceback(None)
            except Exception as exc:  # noqa: BLE001 - a bug mid-stream: the format's error event, logged
                failure = report_internal(self.gw, req, ctx, exc)
            if failure is not None:
                ctx.fail(failure)
                await out.send_bytes(encoder.error(failure))
            elif not encoder.failed:
                estimated = None if encoder.usage_seen else estimated_openai_usage(ctx, request,
                                                                                   stream_output_text(seen))
                await out.send_bytes(encoder.finish(estimated))
        except CLIENT_GONE:
            ctx.client_disconnected = True
        finally:
            # Granian ends the response when the transport is released: never let a
            # reference cycle keep it (and the client) waiting for a GC pass.
            out = None
            source.close()
            if ctx.usage is None and ctx.first_byte is not None:
                estimate_usage(ctx, request, stream_output_text(seen))
            if ctx.capture_content:
                ctx.response_content = stream_output_text(seen)
