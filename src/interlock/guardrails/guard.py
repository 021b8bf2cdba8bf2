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

import functools
import hashlib
import logging
import re
import struct
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from interlock.guardrails.dlp import DlpDetector
from interlock.guardrails.findings import Finding, detector_of
from interlock.guardrails.injection import InjectionDetector, InjectionResult
from interlock.guardrails.modelfiles import ModelUnavailable
from interlock.guardrails.ner import NerSettings, PresidioNer, merge
from interlock.guardrails.settings import (
    DETECTORS,
    DetectorSettings,
    GuardrailSettings,
    ProjectGuardrails,
    effective,
)

if TYPE_CHECKING:
    from interlock.guardrails.classifier import InjectionClassifier

log = logging.getLogger("interlock.guardrails")


@dataclass(frozen=True, slots=True)
class Span:
    """Where a finding is: message ``message`` (None for a plain text), ``text[start:end]`` of that text."""

    type: str
    start: int
    end: int
    message: int | None = None

    def __init__(self, type: str, start: int, end: int, message: int | None = None) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "message", message)


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

    def __init__(self, detector: str, action: str, score: float, flagged: bool,
                 entities: dict[str, int] | None = None, spans: list[Span] | None = None,
                 unchecked: bool = False) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        self.detector = detector
        self.action = action
        self.score = score
        self.flagged = flagged
        self.entities = {} if entities is None else entities
        self.spans = [] if spans is None else spans
        self.unchecked = unchecked

    def record(self) -> dict[str, Any]:
        """For the log record: no text, no offsets."""
        out: dict[str, Any] = {"detector": self.detector, "action": self.action, "score": round(self.score, 3)}
        if self.entities:
            out["entities"] = dict(self.entities)
        if self.unchecked:
            out["unchecked"] = True
        return out


@dataclass(slots=True)
class Piece:
    """One text of a request: its message index and role, and where it lives (``holder[key]``) so a
    redaction can write it back (``json``: the text is a JSON document, tool-call arguments). Not frozen:
    a frozen dataclass's __init__ costs several times as much, and a request builds one per text."""

    text: str
    message: int | None
    role: str
    holder: Any = None  # the dict (or, for an embeddings input list, the list) holding the text
    key: str | int = ""
    json: bool = False
    #: The text's digest, computed once for every detector's verdict lookup.
    _digest: bytes | None = None

    def __init__(self, text: str, message: int | None, role: str, holder: Any = None, key: str | int = "",
                 json: bool = False, _digest: bytes | None = None) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        self.text = text
        self.message = message
        self.role = role
        self.holder = holder
        self.key = key
        self.json = json
        self._digest = _digest

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = Verdicts.digest(self.text)
        return self._digest


def pieces(request: Mapping[str, Any]) -> Iterator[Piece]:
    """Every text of a canonical chat request's messages (strings and ``text`` content parts), or of an
    embeddings request's ``input`` (role ``document``: scanned for sensitive data, not for injection)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        inp = request.get("input")
        if isinstance(inp, str) and inp:
            yield Piece(inp, None, "document", request, "input")
        elif isinstance(inp, list):
            for j, item in enumerate(inp):
                if isinstance(item, str) and item:
                    yield Piece(item, j, "document", inp, j)
        return
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            continue
        role = str(msg.get("role") or "")
        content = msg.get("content")
        if isinstance(content, str):
            if content:
                yield Piece(content, i, role, msg, "content")
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                    yield Piece(part["text"], i, role, part, "text")
        calls = msg.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str) and fn["arguments"]:
                yield Piece(fn["arguments"], i, role, fn, "arguments", json=True)


_PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*_[0-9]+)\]")


class Placeholders:
    """Typed placeholders of one request (``[CREDIT_CARD_1]``; one value, one placeholder) and their values."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self.values)

    def of(self, type_: str, value: str, *, restorable: bool = True) -> str:
        """The value's placeholder. ``restorable=False``: a value the answer leaked, numbered after the
        request's and kept apart from them, never put back."""
        key = (type_ if restorable else "-" + type_, value)
        found = self._by_value.get(key)
        if found is None:
            self._counts[type_] += 1
            found = f"[{type_}_{self._counts[type_]}]"
            self._by_value[key] = found
            if restorable:
                self.values[found[1:-1]] = value
        return found

    def keep(self, restorable: Callable[[str], bool]) -> None:
        """Restore only placeholders of the entity types ``restorable`` accepts (one detector restores,
        the other only redacts)."""
        self.values = {name: v for name, v in self.values.items() if restorable(name.rsplit("_", 1)[0])}

    def restore(self, text: str, *, json_text: bool = False) -> str:
        """``text`` with this request's placeholders put back (JSON-escaped inside a JSON document)."""
        if "[" not in text:
            return text

        def put(m: re.Match[str]) -> str:
            value = self.values.get(m.group(1))
            if value is None:
                return m.group(0)
            return orjson.dumps(value).decode()[1:-1] if json_text else value
        return _PLACEHOLDER.sub(put, text)

    def restore_completion(self, data: dict[str, Any]) -> None:
        """Put the values back into an OpenAI-shaped completion: message text and tool-call arguments."""
        for choice in data.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            if isinstance(message.get("content"), str):
                message["content"] = self.restore(message["content"])
            for call in message.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    fn["arguments"] = self.restore(fn["arguments"], json_text=True)


def _unescaped(span: str) -> str:
    """A span of a JSON document's string, as the value it stands for (the raw span if it is not one)."""
    try:
        return str(orjson.loads(f'"{span}"'))
    except orjson.JSONDecodeError:
        return span


def redact(found: Sequence[tuple[Piece, list[Finding]]], types: Callable[[str], bool],
           placeholders: Placeholders) -> int:
    """Replace every finding whose type ``types`` accepts by its placeholder, in the request itself."""
    done = 0
    for piece, findings in found:
        chosen = [f for f in findings if types(f.type)]
        if not chosen or piece.holder is None:
            continue
        text = piece.text
        for f in sorted(chosen, key=lambda f: f.start, reverse=True):
            value = text[f.start:f.end]
            if piece.json:
                value = _unescaped(value)
            text = text[:f.start] + placeholders.of(f.type, value) + text[f.end:]
            done += 1
        piece.holder[piece.key] = text
    return done


@dataclass(slots=True)
class Checked:
    """A request's detections, and the DLP findings per text (for redaction)."""

    detections: list[Detection] = field(default_factory=list)
    findings: list[tuple[Piece, list[Finding]]] = field(default_factory=list)

    def __init__(self, detections: list[Detection] | None = None,
                 findings: list[tuple[Piece, list[Finding]]] | None = None) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        self.detections = [] if detections is None else detections
        self.findings = [] if findings is None else findings


class Unavailable(Exception):
    """A detector failed and its fail_mode is closed."""

    def __init__(self, detector: str) -> None:
        super().__init__(detector)
        self.detector = detector


class Verdicts:
    """What a detector said of texts seen lately, keyed by a digest of the text (never the text itself, so
    zero data retention holds): the same system prompt on every request, and a conversation's earlier turns
    sent again with each new one, are scanned once. Bounded; the oldest entry goes first. Safe to share
    between threads (the classifier's work is meant for a worker thread)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        # Ordered, to drop the oldest in O(1): deleting a plain dict's first key again and again makes every
        # next `iter()` skip the deleted slots before it (~40,000 instructions a store, full, at 4,096).
        self._seen: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def digest(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    @staticmethod
    def key(text: str, tag: bytes = b"") -> bytes:
        """The key of ``text``'s verdict for ``tag`` (a detector): one digest per text serves every tag."""
        return Verdicts.digest(text) + tag

    def get(self, key: bytes) -> Any:
        return self._seen.get(key)

    def put(self, key: bytes, value: Any) -> None:
        with self._lock:  # two threads must not evict the same oldest entry
            if len(self._seen) >= self.size:
                self._seen.popitem(last=False)
            self._seen[key] = value


#: What a detector that found nothing returns when only flagged detections are wanted (never recorded).
_CLEAN = Detection("", "off", 0.0, False)


class Guard:
    """The configured detectors, built once per worker (and once per distinct project settings, sharing
    ``base``'s DLP detector, NER model and verdicts: patterns and phone region are global, and a rules-only
    injection verdict is re-judged against this guard's thresholds). The learned classifier (prompt_injection
    on with ``classifier: on``) is loaded here, once per process, not on the first request; if it cannot
    be, the error is logged and every prompt_injection check raises it, so the detector's fail_mode decides.

    ``check_request`` and ``run`` are synchronous and CPU-bound: with the classifier (``uses_classifier``),
    ~10 ms per new short text and ~100 ms per 256 tokens of a long one (at most 8 windows per text), which is
    why the pipeline's stage runs them on a worker thread then."""

    def __init__(self, settings: GuardrailSettings, base: Guard | None = None) -> None:
        self.settings = settings
        pi = settings.prompt_injection
        if base is None:
            self.dlp = DlpDetector(phone_region=settings.phone_region, custom=settings.patterns)
            self.verdicts = Verdicts()
            self.ner = _load_ner(settings.ner)
        else:
            self.dlp, self.verdicts, self.ner = base.dlp, base.verdicts, base.ner
        classifier: InjectionClassifier | None = None
        self.classifier_error: str | None = None
        if pi.on and pi.classifier:
            try:
                classifier = load_classifier()
            except ModelUnavailable as exc:
                log.error("prompt_injection: the learned classifier cannot be loaded: %s", exc)
                self.classifier_error = str(exc)
        self.injection: InjectionDetector
        if base is not None and (base.injection.threshold, base.injection.indirect_threshold,
                                 base.injection.classifier) == (pi.threshold, pi.indirect_threshold, classifier):
            self.injection = base.injection
        else:
            self.injection = InjectionDetector(pi.threshold, pi.indirect_threshold, classifier)
        self._configured = tuple(d for d in DETECTORS if settings.detector(d).on)
        #: Any detector on (an attribute, not a property: read on every request).
        self.enabled = bool(self._configured)
        #: The detectors that also scan answers (``output: true``, the default).
        self.output = tuple(d for d in ("pii", "secrets") if settings.detector(d).on and settings.detector(d).output)

    @property
    def uses_classifier(self) -> bool:
        """Whether prompt_injection runs the learned classifier (worth a worker thread off the event loop)."""
        return self.injection.classifier is not None

    def _scan(self, piece: Piece, names: bool) -> list[Finding]:
        key = piece.digest + (b"dlp+ner" if names and self.ner is not None else b"dlp")
        found: tuple[Finding, ...] | None = self.verdicts.get(key)
        if found is None:
            found = tuple(self.scan_text(piece.text, names))
            self.verdicts.put(key, found)
        return list(found)

    def scan_text(self, text: str, names: bool = True) -> list[Finding]:
        """The DLP rules' findings in ``text``, with the NER model's (``guardrails.ner``) when ``names`` (not
        cached: answers' stream windows are seen once)."""
        found = self.dlp.scan(text)
        if names and self.ner is not None:
            found = merge(found, self.ner.scan(text))
        return found

    def _check(self, piece: Piece, indirect: bool) -> InjectionResult:
        if self.classifier_error is not None:
            raise ModelUnavailable(self.classifier_error)
        injection = self.injection
        tag = b"indirect" if indirect else b"direct"
        if injection.classifier is not None:
            # With the classifier the score depends on the threshold (texts the rules flag skip the model):
            # such verdicts are kept per threshold.
            tag = (b"I" if indirect else b"D") + struct.pack(
                "<d", injection.indirect_threshold if indirect else injection.threshold)
        key = piece.digest + tag
        result: InjectionResult | None = self.verdicts.get(key)
        if result is None:
            result = injection.check(piece.text, indirect=indirect)
            self.verdicts.put(key, result)
        else:  # a rules-only score does not depend on the threshold; whether it flags does
            flagged = result.score >= (injection.indirect_threshold if indirect else injection.threshold)
            if flagged != result.flagged:
                result = replace(result, flagged=flagged)
        return result

    def check_request(self, request: Mapping[str, Any]) -> Checked:
        """The configured detectors over a chat request; only detectors that flagged (or could not run)."""
        checked = Checked()
        checked.detections = self.run(list(pieces(request)), self._configured, found=checked.findings)
        return checked

    def configured(self) -> list[str]:
        return list(self._configured)

    def run(self, texts: Sequence[Piece], detectors: Iterable[str], *, passes: bool = False,
            found: list[tuple[Piece, list[Finding]]] | None = None) -> list[Detection]:
        """Each named detector over ``texts``: flagged ones (and, with ``passes``, the others too, unflagged),
        plus unchecked ones under fail_mode open."""
        out: list[Detection] = []
        wanted = list(detectors)
        findings: list[tuple[Piece, list[Finding]]] | None = None
        clean = False
        for name in wanted:
            cfg = self.settings.detector(name)
            try:
                if name == "prompt_injection":
                    detection = self._injection(texts, cfg, passes)
                else:
                    if findings is None:
                        names = "pii" in wanted  # the NER model's types are pii; it costs milliseconds
                        findings = [(p, self._scan(p, names)) for p in texts]
                        if found is not None:
                            found.extend(findings)
                        clean = not any(f for _, f in findings)
                    if clean and not passes:
                        continue  # the common case, clean texts: nothing to build
                    detection = _dlp(name, cfg, findings)
            except Exception:  # a detector's failure is decided by its fail_mode, never silent
                log.exception("guardrail detector %s failed", name)
                if cfg.fail_mode == "closed":
                    raise Unavailable(name) from None
                out.append(Detection(name, cfg.action, 0.0, False, unchecked=True))
                continue
            if detection.flagged or passes:
                out.append(detection)
        return out

    def _injection(self, texts: Sequence[Piece], cfg: DetectorSettings, passes: bool) -> Detection:
        # The operator's system prompt and the model's own turns are not the attack surface.
        results = [(p, self._check(p, p.role == "tool")) for p in texts if p.role in ("user", "tool", "")]
        if not passes and not any(r.flagged for _, r in results):
            return _CLEAN
        best = 0.0
        rules: Counter[str] = Counter()
        spans: list[Span] = []
        flagged = False
        for p, result in results:
            indirect = p.role == "tool"
            best = max(best, result.score)
            if result.flagged:
                flagged = True
                rules.update(result.rules)
                spans.append(Span("INDIRECT_INJECTION" if indirect else "PROMPT_INJECTION", 0, len(p.text),
                                  p.message))
        return Detection("prompt_injection", cfg.action, best, flagged, dict(rules), spans)


class _Unloaded:
    """A NER model that failed to load: every scan raises, so the pii detector's fail_mode decides."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def scan(self, text: str) -> list[Finding]:
        raise RuntimeError(f"the guardrails.ner model could not be loaded: {self.reason}")


def _load_ner(settings: NerSettings | None) -> PresidioNer | _Unloaded | None:
    if settings is None:
        return None
    try:
        return PresidioNer(settings)
    except Exception as exc:  # logged here; each scan then fails by the pii detector's fail_mode
        log.exception("guardrails.ner: could not load %s", settings.model)
        return _Unloaded(f"{type(exc).__name__}: {exc}")


class Guards:
    """One :class:`Guard` per distinct effective settings: the floor's, and each project override's
    (``Principal.guardrails``) combined with it. Bounded: past ``size`` overrides the oldest is dropped
    (rebuilding one costs the injection rules' compilation, never a scan: the verdicts are shared)."""

    def __init__(self, floor: GuardrailSettings, size: int = 256) -> None:
        self.floor = Guard(floor)
        self.size = size
        self._by_override: dict[object, Guard] = {}
        self._by_settings: dict[GuardrailSettings, Guard] = {floor: self.floor}
        self._building = threading.Lock()

    def replace(self, floor: Guard) -> None:
        """A config reload with another floor: every project's guard is rebuilt on its next use against it."""
        with self._building:
            self.floor = floor
            self._by_override = {}
            self._by_settings = {floor.settings: floor}

    def cached(self, override: object) -> Guard | None:
        """The guard already built for a principal's override, or None (then :meth:`get` builds it)."""
        return self.floor if override is None else self._by_override.get(override)

    def get(self, override: object) -> Guard:
        """The guard for a principal's override (None: the floor's). Building one compiles the injection
        rules and may load the classifier, so the guard stage calls this on a worker thread: one builder at
        a time."""
        guard = self.cached(override)
        if guard is not None:
            return guard
        with self._building:
            return self._build(override)

    def _build(self, override: object) -> Guard:
        guard = self._by_override.get(override)
        if guard is None:
            if not isinstance(override, ProjectGuardrails):
                raise TypeError(f"a guardrail override is a ProjectGuardrails, got {type(override).__name__}")
            settings = effective(self.floor.settings, override)
            guard = self._by_settings.get(settings)
            if guard is None:
                if len(self._by_settings) > self.size:
                    self._by_settings = {self.floor.settings: self.floor}
                guard = self._by_settings[settings] = Guard(settings, self.floor)
            if len(self._by_override) >= self.size:
                del self._by_override[next(iter(self._by_override))]
            self._by_override[override] = guard
        return guard


def load_classifier() -> InjectionClassifier:
    """The classifier whose head is at ``classifier.HEAD_PATH`` (the packaged one), loaded once per process
    and shared (it is read-only once built). A failure is not kept: the next Guard tries again."""
    try:
        from interlock.guardrails import classifier
    except ImportError as exc:  # numpy, of the classifier extra, is not installed
        raise ModelUnavailable(f"{exc.name} is not installed") from None
    return _loaded(classifier.HEAD_PATH)


@functools.cache
def _loaded(head: Path) -> InjectionClassifier:
    from interlock.guardrails.classifier import InjectionClassifier

    return InjectionClassifier(head)


def _dlp(name: str, cfg: DetectorSettings, findings: Sequence[tuple[Piece, list[Finding]]]) -> Detection:
    counts: Counter[str] = Counter()
    spans: list[Span] = []
    best = 0.0
    for piece, found in findings:
        for f in found:
            if detector_of(f.type) != name:
                continue
            counts[f.type] += 1
            spans.append(Span(f.type, f.start, f.end, piece.message))
            best = max(best, f.score)
    return Detection(name, cfg.action, best, bool(counts), dict(counts), spans)


def header_value(detections: Sequence[Detection], prefix: str = "") -> str:
    """``x-interlock-guardrails``: ``detector=action`` for each detection (``unchecked`` when not run);
    ``prefix`` names where (``output.`` for the answer)."""
    return ", ".join(f"{prefix}{d.detector}={'unchecked' if d.unchecked else d.action}" for d in detections)
