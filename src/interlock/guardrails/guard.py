"""Runs the configured detectors over a canonical chat request (or a plain text) and decides.

What is scanned, per message of the canonical (OpenAI-shaped) request every inbound API is
parsed into: the text of every turn and content part for ``pii`` and ``secrets`` (system
prompts, the user's turns, earlier assistant turns, tool results); the user's own turns
for ``prompt_injection`` at ``threshold``, and tool results (``role: tool``, which carry
Anthropic ``tool_result`` blocks and Responses ``function_call_output`` items too) as
*indirect* injection at ``indirect_threshold``.

A :class:`Detection` holds what the log record, the metrics and the caller's
``x-interlock-guardrails`` header may say: detector, action, score, entity types and
counts. Never the matched text.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from interlock.guardrails.dlp import DlpDetector
from interlock.guardrails.findings import SECRET_TYPES, Finding
from interlock.guardrails.injection import InjectionDetector
from interlock.guardrails.settings import DETECTORS, DetectorSettings, GuardrailSettings

log = logging.getLogger("interlock.guardrails")


@dataclass(frozen=True, slots=True)
class Span:
    """Where a finding is: message ``message`` (None for a plain text), ``text[start:end]`` of that text."""

    type: str
    start: int
    end: int
    message: int | None = None


@dataclass(slots=True)
class Detection:
    detector: str
    action: str
    score: float
    flagged: bool
    #: Entity type -> count (DLP), or rule name -> 1 (prompt injection).
    entities: dict[str, int] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    #: The detector could not run (fail_mode open let the request through unchecked).
    unchecked: bool = False

    def record(self) -> dict[str, Any]:
        """For the log record: no text, no offsets."""
        out: dict[str, Any] = {"detector": self.detector, "action": self.action, "score": round(self.score, 3)}
        if self.entities:
            out["entities"] = dict(self.entities)
        if self.unchecked:
            out["unchecked"] = True
        return out


@dataclass(frozen=True, slots=True)
class Piece:
    """One text of a request: its message index, role, and whether it is data the model reads (indirect)."""

    text: str
    message: int | None
    role: str


def pieces(request: Mapping[str, Any]) -> Iterator[Piece]:
    """Every text of a canonical chat request's messages (strings and ``text`` content parts)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            continue
        role = str(msg.get("role") or "")
        content = msg.get("content")
        if isinstance(content, str):
            if content:
                yield Piece(content, i, role)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                    yield Piece(part["text"], i, role)
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str) and fn["arguments"]:
                yield Piece(fn["arguments"], i, role)


class Unavailable(Exception):
    """A detector failed and its fail_mode is closed."""

    def __init__(self, detector: str) -> None:
        super().__init__(detector)
        self.detector = detector


class Guard:
    """The configured detectors, built once per worker."""

    def __init__(self, settings: GuardrailSettings) -> None:
        self.settings = settings
        self.dlp = DlpDetector(phone_region=settings.phone_region, custom=settings.patterns)
        pi = settings.prompt_injection
        self.injection = InjectionDetector(pi.threshold, pi.indirect_threshold)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def check_request(self, request: Mapping[str, Any]) -> list[Detection]:
        """The configured detectors over a chat request; only detectors that flagged (or could not run)."""
        return self.run(list(pieces(request)), self.configured())

    def configured(self) -> list[str]:
        return [d for d in DETECTORS if self.settings.detector(d).on]

    def run(self, texts: Sequence[Piece], detectors: Iterable[str], *, passes: bool = False) -> list[Detection]:
        """Each named detector over ``texts``: flagged ones (and, with ``passes``, the others too, unflagged),
        plus unchecked ones under fail_mode open."""
        out: list[Detection] = []
        wanted = list(detectors)
        findings: list[tuple[Piece, list[Finding]]] | None = None
        for name in wanted:
            cfg = self.settings.detector(name)
            try:
                if name == "prompt_injection":
                    found = self._injection(texts, cfg)
                else:
                    if findings is None:
                        findings = [(p, self.dlp.scan(p.text)) for p in texts]
                    found = _dlp(name, cfg, findings)
            except Exception:  # a detector's failure is decided by its fail_mode, never silent
                log.exception("guardrail detector %s failed", name)
                if cfg.fail_mode == "closed":
                    raise Unavailable(name) from None
                out.append(Detection(name, cfg.action, 0.0, False, unchecked=True))
                continue
            if found.flagged or passes:
                out.append(found)
        return out

    def _injection(self, texts: Sequence[Piece], cfg: DetectorSettings) -> Detection:
        best = 0.0
        rules: Counter[str] = Counter()
        spans: list[Span] = []
        flagged = False
        for p in texts:
            indirect = p.role == "tool"
            if p.role not in ("user", "tool", ""):
                continue  # the operator's system prompt and the model's own turns are not the attack surface
            result = self.injection.check(p.text, indirect=indirect)
            best = max(best, result.score)
            if result.flagged:
                flagged = True
                rules.update(result.rules)
                spans.append(Span("INDIRECT_INJECTION" if indirect else "PROMPT_INJECTION", 0, len(p.text),
                                  p.message))
        return Detection("prompt_injection", cfg.action, best, flagged, dict(rules), spans)


def _dlp(name: str, cfg: DetectorSettings, findings: Sequence[tuple[Piece, list[Finding]]]) -> Detection:
    secrets = name == "secrets"
    counts: Counter[str] = Counter()
    spans: list[Span] = []
    best = 0.0
    for piece, found in findings:
        for f in found:
            if (f.type in SECRET_TYPES) != secrets:
                continue
            counts[f.type] += 1
            spans.append(Span(f.type, f.start, f.end, piece.message))
            best = max(best, f.score)
    return Detection(name, cfg.action, best, bool(counts), dict(counts), spans)


def header_value(detections: Sequence[Detection]) -> str:
    """``x-interlock-guardrails``: ``detector=action`` for each detection (``unchecked`` when not run)."""
    return ", ".join(f"{d.detector}={'unchecked' if d.unchecked else d.action}" for d in detections)
