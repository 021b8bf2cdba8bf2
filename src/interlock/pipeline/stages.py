"""The stages of the request path, each built with only what it uses.

An inference request runs: :class:`Identify` (who, and zero data retention) → the
inbound codec's parse → the :data:`Stage` list (route, admit, capture; a guardrail
or cache stage is one more entry, built in ``app.py``) → dispatch → the codec's
encoder → the :data:`Settler` list (routing statistics, governance, the request
log), which runs whatever happened. :class:`Lifecycle` owns that last part and the
handling of client disconnects and bugs, for every handler that calls vendors.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, InternalError
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.core.timers import running_loop
from interlock.observability import zdr_log
from interlock.pipeline.settle import Ledger, capture_content

log = logging.getLogger("interlock")


class Stage(Protocol):
    """One step between parse and dispatch: reads (and may replace) the canonical request, or refuses it.

    A stage that needs no I/O is a plain call; one that awaits (admit, a remote guardrail) is an
    :class:`AsyncStage`. The pipeline tells them apart once, when it is built, so a plain stage costs
    no coroutine per request.
    """

    def __call__(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]: ...


class AsyncStage(Protocol):
    async def __call__(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]: ...


AnyStage = Stage | AsyncStage


def bind(stages: tuple[AnyStage, ...]) -> tuple[tuple[Callable[..., Any], bool], ...]:
    """Each stage with whether it must be awaited, as the pipeline's loop reads them."""
    return tuple((stage, inspect.iscoroutinefunction(stage.__call__)) for stage in stages)


class Settler(Protocol):
    """Accounts for a finished request (success, failure or disconnect); never awaits, never raises."""

    def __call__(self, ctx: RequestContext) -> None: ...


class Authenticate(Protocol):
    def authenticate(self, authorization: str | None, api_key: str | None,
                     project: str | None = None) -> Principal: ...


class Router(Protocol):
    """What routing offers the request path (``routing.engine.RoutingEngine``)."""

    def route(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]: ...

    def observe(self, ctx: RequestContext) -> None: ...


class Admission(Protocol):
    """What governance offers the request path (``governance.service.Governance``)."""

    async def admit(self, ctx: RequestContext, request: dict[str, Any]) -> object: ...

    def settle(self, ctx: RequestContext, res: object) -> None: ...


class Identifies(Protocol):
    """Decides who is calling (sets ``ctx.principal`` and its zero data retention) or raises."""

    def __call__(self, req: Exchange, ctx: RequestContext) -> None: ...


class Identify:
    """Who is calling, and whether zero data retention applies: decided before the body is read.

    ZDR (``logging.zero_data_retention``, or the project's own ``zero_data_retention``) governs every
    later stage - no content captured for the log, no Responses state stored, no error text kept.
    """

    __slots__ = ("auth", "zero_data_retention")

    def __init__(self, auth: Authenticate, zero_data_retention: bool) -> None:
        self.auth = auth
        self.zero_data_retention = zero_data_retention

    def __call__(self, req: Exchange, ctx: RequestContext) -> None:
        principal = self.auth.authenticate(req.header("authorization"), req.header("x-api-key"),
                                           req.header("x-interlock-project"))
        # attribute(), inlined: this runs on every request.
        ctx.principal = principal
        ctx.zero_data_retention = principal.zero_data_retention or self.zero_data_retention
        zdr_log.mark(ctx.zero_data_retention)

    def attribute(self, ctx: RequestContext, principal: Principal) -> None:
        """The request is ``principal``'s: ZDR when its project or the gateway asks for it."""
        ctx.principal = principal
        ctx.zero_data_retention = principal.zero_data_retention or self.zero_data_retention
        zdr_log.mark(ctx.zero_data_retention)  # a traceback logged from this task then withholds exception texts


class RouteStage:
    """Resolve the model name and rank the targets (``routing/``); records the trace on the context."""

    __slots__ = ("routing",)

    def __init__(self, routing: Router) -> None:
        self.routing = routing

    def __call__(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        return self.routing.route(ctx, request)


class AdmitStage:
    """Allowed models, rate limits and the budget reservation (``governance/``); settle releases it."""

    __slots__ = ("governance",)

    def __init__(self, governance: Admission) -> None:
        self.governance = governance

    async def __call__(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        ctx.reservation = await self.governance.admit(ctx, request)
        return request


class CaptureStage:
    """Keep the request's content for the log when the project's log level (set by admit) asks for it."""

    __slots__ = ("ledger",)

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __call__(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        if ctx.log_level is not None:
            capture_content(ctx, request, self.ledger)
        return request


def settlers(routing: Router, governance: Admission, ledger: Ledger) -> tuple[Settler, ...]:
    """Routing statistics and traces, then governance's exact charge, then the one log record."""

    def settle_governance(ctx: RequestContext) -> None:
        governance.settle(ctx, ctx.reservation)

    return routing.observe, settle_governance, ledger.settle


class InternalErrors:
    """Requests that ended in an exception nothing answered (a bug): logged, counted by route, answered 500."""

    __slots__ = ("count", "label")

    def __init__(self, count: Callable[[str], None], label: Callable[[str], str]) -> None:
        self.count = count
        self.label = label

    def report(self, req: Exchange, ctx: RequestContext, exc: BaseException) -> InternalError:
        """Log it under the request id, count it, fail the context with a 500.

        The log line names the request id (the client sees it in ``x-interlock-request-id`` and the error
        message) and carries the traceback; under zero data retention ``observability/zdr_log`` keeps only
        its frames and the exception's class, since an exception's text may quote the prompt.
        """
        self.count(self.label(req.path))
        if ctx.zero_data_retention:
            zdr_log.mark(True)  # whatever marked the task before, this request's traceback withholds its texts
        log.error("internal error on %s %s, request id %s", req.method, req.path, ctx.id, exc_info=exc)
        exc.__traceback__ = None  # its frames reference the context: no cycle left for the GC
        err = InternalError(f"The gateway hit an internal error ({type(exc).__name__}); it is logged under "
                            f"request id {ctx.id}.")
        ctx.fail(err)
        return err

    def answer(self, req: Exchange, ctx: RequestContext, exc: BaseException,
               render_error: Callable[[GatewayError], bytes]) -> None:
        """:meth:`report`, then the 500 in the caller's format, with the request id, if nothing was sent yet."""
        err = self.report(req, ctx, exc)
        if not req.responded:
            req.send(err.status, render_error(err), [("content-type", "application/json"), *ctx.response_headers()])


class Lifecycle:
    """What every inference request shares, whatever its API: disconnects, errors, settle."""

    __slots__ = ("errors", "settlers")

    def __init__(self, settlers: tuple[Settler, ...], errors: InternalErrors) -> None:
        self.settlers = settlers
        self.errors = errors

    async def run(self, req: Exchange, ctx: RequestContext, run: Callable[[Exchange, RequestContext], Awaitable[None]],
                  render_error: Callable[[GatewayError], bytes]) -> None:
        """Run ``run``; a client that disconnects before the answer is complete cancels the work (which aborts
        the vendor call); a :class:`GatewayError` becomes an error in the caller's format; the settlers run
        whatever happened."""
        task = asyncio.current_task(running_loop())
        # Granian's disconnect future takes callbacks directly: no watcher task per request.
        watcher = req.client_disconnect()

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
            self.errors.answer(req, ctx, exc, render_error)
        finally:
            watcher.remove_done_callback(on_disconnect)
            watcher.cancel()
            for settler in self.settlers:
                settler(ctx)
