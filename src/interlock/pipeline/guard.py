"""The guardrails stage: the configured detectors over every inbound chat request, before routing.

Every inbound API (chat completions, Anthropic Messages, Responses) is parsed into the
canonical chat request first, so one stage covers all three. What the detectors found
goes on the request's log record (``ctx.guardrails``: detector, action, score, entity
types and counts, never the text), into ``/metrics`` (by detector and action), and to
the caller in ``x-interlock-guardrails``. A ``block`` refuses with 400 ``content_blocked``
in the caller's API format before any vendor is called; a detector that cannot run
refuses with 503 ``guardrail_unavailable`` (``fail_mode: closed``) or lets the request
through marked ``unchecked`` (``open``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from interlock.core.context import RequestContext
from interlock.core.errors import ContentBlocked, GuardrailUnavailable
from interlock.guardrails.answer import AnswerGuard
from interlock.guardrails.findings import detector_of
from interlock.guardrails.guard import (
    Checked,
    Detection,
    Guard,
    Guards,
    Placeholders,
    Unavailable,
    header_value,
    redact,
)

T = TypeVar("T")
R = TypeVar("R")

#: Where each inbound API's messages are, for the error's ``param``.
_PARAM = {"openai.chat": "messages", "anthropic.messages": "messages", "openai.responses": "input",
          "openai.embeddings": "input"}


#: Threads for the learned classifier, per worker process: two, so one long text does not hold up every
#: short one; numpy releases the GIL in its matrix products (one BLAS thread each: ``OPENBLAS_NUM_THREADS``).
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="interlock-guardrails")


async def off_loop(fn: Callable[[T], R], arg: T) -> R:
    """``fn(arg)`` on a guardrails thread."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, fn, arg)


class GuardStage:
    __slots__ = ("count", "guards")

    def __init__(self, guards: Guards, count: Callable[[str, str, str], None]) -> None:
        #: One guard per distinct effective settings; ``guards.floor`` is the operator's (read per request:
        #: a config reload may replace it).
        self.guards = guards
        #: ``count(detector, action, direction)``: the metrics counter (direction ``input`` or ``output``).
        self.count = count

    async def __call__(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        # The caller's project settings (on top of the floor) choose the guard; nothing on: one early return.
        principal = ctx.principal
        override = None if principal is None else principal.guardrails
        if override is None:
            guard = self.guards.floor
            if not guard.enabled:
                return request
        else:
            # A project's guard not built yet: built on a worker thread (rules to compile, maybe a model to load).
            built = self.guards.cached(override)
            guard = built if built is not None else await off_loop(self.guards.get, override)
            if not guard.enabled:
                return request
        try:
            # The learned classifier costs milliseconds: a worker thread, so the loop serves other requests.
            checked = (await off_loop(guard.check_request, request) if guard.uses_classifier
                       else guard.check_request(request))
        except Unavailable as exc:
            self.count(exc.detector, "unavailable", "input")
            ctx.guardrails = [{"detector": exc.detector, "action": "unavailable"}]
            ctx.request_content = None
            raise GuardrailUnavailable(f"The {exc.detector} guardrail could not run, and its fail_mode is closed: "
                                       "the request was not sent. Try again, or ask the operator.") from None
        restore = self._act(ctx, guard, checked) if checked.detections else None
        if (guard.output or restore is not None) and ctx.inbound != "openai.embeddings":
            ctx.answer = AnswerGuard(guard, restore, self.count)
        return request

    def _act(self, ctx: RequestContext, guard: Guard, checked: Checked) -> Placeholders | None:
        """Record the detections, then block (raises) or redact; the placeholders to restore, if any."""
        detections = checked.detections
        ctx.guardrails = [d.record() for d in detections]
        ctx.guardrails_header = header_value(detections)
        for d in detections:
            self.count(d.detector, "unchecked" if d.unchecked else d.action, "input")
        for d in detections:
            if d.action == "block" and d.flagged:
                ctx.request_content = None  # a blocked request's content is not logged, whatever the level
                raise self._blocked(ctx, d)
        redacting = {d.detector: guard.settings.detector(d.detector) for d in detections
                     if d.action == "redact" and d.flagged}
        restore: Placeholders | None = None
        if redacting:
            placeholders = Placeholders()
            # In place: the captured log content (which shares the messages) holds the placeholders too.
            redact(checked.findings, lambda t: detector_of(t) in redacting, placeholders)
            if placeholders and any(cfg.restore for cfg in redacting.values()):
                restoring = {name for name, cfg in redacting.items() if cfg.restore}
                if restoring != set(redacting):
                    placeholders.keep(lambda t: detector_of(t) in restoring)
                restore = placeholders
        return restore

    @staticmethod
    def _blocked(ctx: RequestContext, d: Detection) -> ContentBlocked:
        if d.detector == "prompt_injection":
            what = f"score {d.score:.2f}"
        else:
            what = ", ".join(f"{n} {name}" for name, n in sorted(d.entities.items()))
        param = _PARAM.get(ctx.inbound, "messages")
        first = d.spans[0].message if d.spans else None
        if first is not None and ctx.inbound in ("openai.chat", "openai.embeddings"):
            param = f"{param}[{first}]"
        return ContentBlocked(f"The request was blocked by the {d.detector} guardrail ({what}). "
                              "Remove it and try again.", param=param)
