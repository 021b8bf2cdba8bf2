"""``POST /v1/guardrails/check``: run the guardrail detectors on a text or a message list, no model called.

Request ``{"input": <string or messages>, "detectors": ["pii", "secrets", "prompt_injection"]}``;
without ``detectors``, the ones on for the caller's project (the operator's floor with the project's own
settings; all three when none is). Actions and thresholds are the caller's project's. Answer
``{"flagged", "detectors": [{"name", "score", "verdict": "pass" | "flag" | "unchecked", "action",
"entities": [{"type", "start", "end"}]}]}``: offsets into the input string, or into the text of
message ``message`` of a list. The text itself is never echoed, and nothing is logged.
"""

from __future__ import annotations

import functools
from typing import Any

from interlock.core.errors import GuardrailUnavailable, InvalidRequest
from interlock.core.exchange import Exchange
from interlock.guardrails.guard import Detection, Guards, Piece, Unavailable, pieces
from interlock.guardrails.settings import DETECTORS
from interlock.observability import zdr_log
from interlock.pipeline.guard import off_loop
from interlock.pipeline.stages import Authenticate
from interlock.wire.chat_validation import parse_json_object

_ROLES = ("system", "developer", "user", "assistant", "tool")


def _texts(value: object) -> list[Piece]:
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' is empty.", param="input")
        return [Piece(value, None, "user")]
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'input' must be a string or a non-empty list of messages.", param="input",
                             code="invalid_type")
    for i, msg in enumerate(value):
        if not isinstance(msg, dict) or msg.get("role") not in _ROLES:
            raise InvalidRequest(f"input[{i}] must be a message with a role ({', '.join(_ROLES)}) and content.",
                                 param=f"input[{i}]")
        if not isinstance(msg.get("content"), str | list | None):
            raise InvalidRequest(f"input[{i}].content must be a string or a list of content parts.",
                                 param=f"input[{i}].content")
        if not isinstance(msg.get("tool_calls"), list | None):
            raise InvalidRequest(f"input[{i}].tool_calls must be a list.", param=f"input[{i}].tool_calls")
    return list(pieces({"messages": value}))


def _detectors(value: object, configured: list[str]) -> list[str]:
    if value is None:
        return configured or list(DETECTORS)
    if not isinstance(value, list) or not value or not all(isinstance(d, str) for d in value):
        raise InvalidRequest("'detectors' must be a non-empty list of detector names.", param="detectors")
    unknown = [d for d in value if d not in DETECTORS]
    if unknown:
        raise InvalidRequest(f"Unknown detector {unknown[0]!r}: use {', '.join(DETECTORS)}.", param="detectors")
    return list(dict.fromkeys(value))


def _render(d: Detection) -> dict[str, Any]:
    entities = []
    for span in d.spans:
        item: dict[str, Any] = {"type": span.type, "start": span.start, "end": span.end}
        if span.message is not None:
            item["message"] = span.message
        entities.append(item)
    return {"name": d.detector, "score": round(d.score, 3),
            "verdict": "unchecked" if d.unchecked else "flag" if d.flagged else "pass",
            "action": d.action, "entities": entities}


class GuardrailsApi:
    def __init__(self, auth: Authenticate, guards: Guards, max_body: int) -> None:
        self.auth = auth
        self.guards = guards
        self.max_body = max_body

    async def check(self, req: Exchange) -> None:
        # Any key may test the policy: nothing of another tenant is read, nothing is stored.
        principal = self.auth.authenticate(req.header("authorization"), req.header("x-api-key"),
                                           req.header("x-interlock-project"))
        zdr_log.mark(True)  # the texts are the caller's content: a traceback of this request keeps none of them
        body = parse_json_object(await req.body(self.max_body))
        if "input" not in body:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input",
                                 code="missing_required_parameter")
        req.json(200, await self.verdict(principal.guardrails, body["input"], body.get("detectors")))

    async def verdict(self, override: object, value: object, detectors: object = None) -> dict[str, Any]:
        """The check of ``value`` (a string or messages) under a project's settings (``override``: the
        principal's ``guardrails``; None: the floor). Also the console's test box (handed in by app.py)."""
        texts = _texts(value)
        guard = self.guards.get(override)
        names = _detectors(detectors, guard.configured())
        try:
            check = functools.partial(guard.run, texts, passes=True)
            found = await off_loop(check, names) if guard.uses_classifier else check(names)
        except Unavailable as exc:
            raise GuardrailUnavailable(f"The {exc.detector} guardrail could not run (fail_mode closed).") from None
        return {"flagged": any(d.flagged for d in found), "detectors": [_render(d) for d in found]}
