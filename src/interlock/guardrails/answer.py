"""The answer side: ``pii`` and ``secrets`` over what the model wrote, before the caller sees it.

A non-streamed answer is scanned whole (message text, reasoning, refusal, tool-call arguments). A
streamed one passes through :class:`StreamScreen`, which keeps back the newest text of each choice
until it is safe to relay: at least :data:`HOLD` characters, and never part of a run without
whitespace (a key, a token, an e-mail address or a placeholder is whitespace-free; the spaced
entities, cards, IBANs, phone numbers, are shorter than :data:`HOLD`). A found value is redacted or
blocks the stream before any of it is relayed. Placeholders of the request (``restore: true``) are
put back in what is relayed, after the scan, so the caller's own values are never reported as leaks.

Prompt injection is not scored on answers: the model's own text is not instructions to it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import msgspec
import orjson

from interlock.core.context import RequestContext
from interlock.core.errors import ContentBlocked, GatewayError, GuardrailUnavailable
from interlock.guardrails.findings import Finding, detector_of
from interlock.guardrails.guard import Detection, Guard, Placeholders, header_value

log = logging.getLogger("interlock.guardrails")

#: Characters of a stream kept back behind the newest text (longer than any spaced entity).
HOLD = 64
#: More characters than that before the next scan, so a scan covers several chunks.
STEP = 32
#: Characters before the unsent text that a scan sees again, for context words ("password", "aws").
CONTEXT = 200
#: Delta fields whose text reaches the caller.
TEXT_KEYS = ("content", "refusal", "reasoning_content", "reasoning")

Count = Callable[[str, str, str], None]


@dataclass(slots=True)
class _Tally:
    """What one detector found in the answer so far."""

    action: str
    entities: Counter[str] = field(default_factory=Counter)
    score: float = 0.0
    unchecked: bool = False

    def __init__(self, action: str, entities: Counter[str] | None = None, score: float = 0.0,
                 unchecked: bool = False) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        self.action = action
        self.entities = Counter() if entities is None else entities
        self.score = score
        self.unchecked = unchecked


class AnswerGuard:
    """One request's answer: the guard's output detectors (``pii``/``secrets`` with ``output: true``) and the
    request's placeholders to restore (None when nothing is restored)."""

    def __init__(self, guard: Guard, restore: Placeholders | None, count: Count) -> None:
        self.guard = guard
        #: Emptied when a detector fails under fail_mode open: the rest of the answer goes unchecked.
        self.detectors = guard.output
        self._placeholders = restore
        self.restoring = restore is not None and bool(restore)
        self.count = count
        self.tallies: dict[str, _Tally] = {}
        self.blocked: GatewayError | None = None

    @property
    def scanning(self) -> bool:
        return bool(self.detectors)

    @property
    def placeholders(self) -> Placeholders:
        """The request's placeholders, or new ones for the answer's own values (made only when needed)."""
        if self._placeholders is None:
            self._placeholders = Placeholders()
        return self._placeholders

    def _findings(self, text: str) -> list[Finding]:
        """The output detectors' findings in ``text``; a failing detector decides by its fail_mode."""
        try:
            found = self.guard.scan_text(text, "pii" in self.detectors)
        except Exception:  # never silent: logged, then closed refuses and open marks the answer unchecked
            log.exception("guardrail detectors failed on an answer")
            closed = [d for d in self.detectors if self.guard.settings.detector(d).fail_mode == "closed"]
            for name in self.detectors:
                tally = self._tally(name)
                tally.unchecked = True
                if name in closed:
                    tally.action = "unavailable"
            self.detectors = ()  # open: the rest of the answer goes unchecked, and says so
            if closed:
                self.blocked = GuardrailUnavailable(
                    f"The {closed[0]} guardrail could not check the answer, and its fail_mode is closed: the "
                    "answer was not sent. Try again, or ask the operator.")
                raise _Stop from None
            return []
        return [f for f in found if detector_of(f.type) in self.detectors]

    def _tally(self, name: str) -> _Tally:
        tally = self.tallies.get(name)
        if tally is None:
            tally = self.tallies[name] = _Tally(self.guard.settings.detector(name).action)
        return tally

    def _apply(self, text: str, findings: list[Finding]) -> str:
        """Record ``findings`` (all inside ``text``), then block, or redact those whose detector redacts."""
        for f in findings:
            tally = self._tally(detector_of(f.type))
            tally.entities[f.type] += 1
            tally.score = max(tally.score, f.score)
        for f in findings:
            name = detector_of(f.type)
            if self.tallies[name].action == "block":
                what = ", ".join(f"{n} {t}" for t, n in sorted(self.tallies[name].entities.items()))
                self.blocked = ContentBlocked(f"The answer was blocked by the {name} guardrail ({what}): it was "
                                              "not sent. Ask differently, or ask the operator.")
                raise _Stop
        for f in sorted(findings, key=lambda f: f.start, reverse=True):
            if self.tallies[detector_of(f.type)].action == "redact":
                value = text[f.start:f.end]
                # A placeholder is plain [A-Z0-9_] text: valid inside a JSON string (tool arguments) as it is.
                text = text[:f.start] + self.placeholders.of(f.type, value, restorable=False) + text[f.end:]
        return text

    def _restore(self, text: str, *, json_text: bool) -> str:
        return self.placeholders.restore(text, json_text=json_text) if self.restoring else text

    # --- non-streamed ---

    def screen(self, data: dict[str, Any]) -> None:
        """Scan an OpenAI-shaped completion in place: redact, or raise the block (ContentBlocked, or
        GuardrailUnavailable under fail_mode closed)."""
        if not self.scanning:
            return
        try:
            for choice in data.get("choices") or ():
                message = choice.get("message") if isinstance(choice, dict) else None
                if not isinstance(message, dict):
                    continue
                if choice.get("logprobs") is not None:
                    choice["logprobs"] = None  # they repeat the text token by token
                for key in TEXT_KEYS:
                    text = message.get(key)
                    if isinstance(text, str) and text and (found := self._findings(text)):
                        message[key] = self._apply(text, found)
                for call in message.get("tool_calls") or ():
                    fn = call.get("function") if isinstance(call, dict) else None
                    if not isinstance(fn, dict):
                        continue
                    args = fn.get("arguments")
                    if isinstance(args, str) and args and (found := self._findings(args)):
                        fn["arguments"] = self._apply(args, found)
        except _Stop:
            assert self.blocked is not None
            raise self.blocked from None

    def restore(self, data: dict[str, Any]) -> None:
        if self.restoring:
            self.placeholders.restore_completion(data)

    # --- the record ---

    def detections(self) -> list[Detection]:
        return [Detection(name, t.action, t.score, bool(t.entities), dict(t.entities), unchecked=t.unchecked)
                for name, t in self.tallies.items() if t.entities or t.unchecked]

    def settle(self, ctx: RequestContext) -> None:
        """Put what the answer's scan found on the log record and in the metrics (once, at the end)."""
        if not self.tallies:
            return
        found = self.detections()
        if not found:
            return
        records = list(ctx.guardrails or [])
        for d in found:
            records.append({**d.record(), "direction": "output"})
            self.count(d.detector, "unchecked" if d.unchecked else d.action, "output")
        ctx.guardrails = records
        # Read only by a non-streamed answer: a stream's headers went out before its text.
        said = header_value(found, "output.")
        ctx.guardrails_header = f"{ctx.guardrails_header}, {said}" if ctx.guardrails_header else said

    def stream(self) -> StreamScreen:
        return StreamScreen(self)


class _Stop(Exception):
    """A block (or a closed detector failure) ends the scan; :attr:`AnswerGuard.blocked` says which."""


@dataclass(slots=True)
class _Channel:
    """One text of a streamed choice: ``content`` (or another text key), or a tool call's arguments.
    ``text`` holds the tail from absolute offset ``base``; ``sent`` characters have been relayed."""

    key: str
    tool: int | None = None
    text: str = ""
    base: int = 0
    sent: int = 0

    def __init__(self, key: str, tool: int | None = None, text: str = "", base: int = 0, sent: int = 0) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        self.key = key
        self.tool = tool
        self.text = text
        self.base = base
        self.sent = sent

    @property
    def json(self) -> bool:
        return self.tool is not None

    @property
    def end(self) -> int:
        return self.base + len(self.text)


_HEAD_KEYS = ("id", "object", "created", "model", "system_fingerprint")


#: A chunk that only adds text: one choice whose delta is ``content`` alone; no finish, logprobs or usage.
#: Made with ``defstruct``, not class bodies: msgspec reads a class's field types from its annotations,
#: which a compiled module (make fast) does not keep (as ``wire/openai_chat.py``'s ``_Event``).
_TextDelta = msgspec.defstruct("_TextDelta", [("content", str)], forbid_unknown_fields=True)
_TextChoice = msgspec.defstruct("_TextChoice", [("delta", _TextDelta), ("index", int, 0),
                                                ("finish_reason", None, None), ("logprobs", None, None)])
_TextChunk = msgspec.defstruct(
    "_TextChunk", [("choices", list[_TextChoice]), ("usage", None, None)])  # type: ignore[valid-type]


class _TextDeltaFields(Protocol):
    content: str


class _TextChoiceFields(Protocol):
    delta: _TextDeltaFields
    index: int


class _TextChunkFields(Protocol):
    choices: list[_TextChoiceFields]


_decode_text_chunk = cast("Callable[[bytes], _TextChunkFields]", msgspec.json.Decoder(_TextChunk).decode)


class StreamScreen:
    """Canonical chunk payloads in, the payloads that are safe to relay out (see the module's docstring)."""

    def __init__(self, answer: AnswerGuard) -> None:
        self.answer = answer
        self.hold = HOLD if answer.scanning else 0
        self.step = STEP if answer.scanning else 0
        self._active: dict[int, _Channel] = {}
        self._head: dict[str, Any] = {"object": "chat.completion.chunk"}
        #: What was relayed before placeholders were put back (kept only when they are).
        self._vendor_text: list[str] | None = [] if answer.restoring else None

    @property
    def blocked(self) -> GatewayError | None:
        return self.answer.blocked

    def feed(self, payloads: list[bytes]) -> list[bytes]:
        """What of these payloads may go to the caller now (nothing more once :attr:`blocked` is set)."""
        out: list[bytes] = []
        try:
            for payload in payloads:
                self._one(payload, out)
        except _Stop:
            pass
        return out

    def finish(self) -> list[bytes]:
        """The end of the vendor's stream: everything still held, scanned."""
        out: list[bytes] = []
        try:
            for idx in list(self._active):
                self._close(idx, out)
        except _Stop:
            pass
        return out

    def log_text(self) -> str | None:
        return None if self._vendor_text is None else "".join(self._vendor_text)

    def _one(self, payload: bytes, out: list[bytes]) -> None:
        if self._more_text(payload, out):
            return
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            chunk = None
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(chunk, dict) or not isinstance(choices, list) or not choices:
            # A usage chunk, or one the encoder will refuse: whatever is held goes first.
            for idx in list(self._active):
                self._close(idx, out)
            out.append(payload)
            return
        for key in _HEAD_KEYS:
            if key in chunk:
                self._head[key] = chunk[key]
        before: list[bytes] = []
        changed = False
        keep = False
        for choice in choices:
            if not isinstance(choice, dict):
                keep = True
                continue
            index = choice.get("index")
            idx = index if isinstance(index, int) else 0
            if choice.get("logprobs") is not None and self.answer.scanning:
                choice["logprobs"] = None
                changed = True
            final = choice.get("finish_reason") is not None
            delta = choice.get("delta")
            if isinstance(delta, dict):
                changed |= self._delta(idx, delta, before, final)
                keep |= bool(delta)
            if final:
                keep = True
                if idx in self._active:  # held text of a channel this chunk does not carry goes before it
                    self._close(idx, before)
        if "usage" in chunk and chunk["usage"] is not None:
            keep = True
        out.extend(before)
        if keep:
            out.append(orjson.dumps(chunk) if changed else payload)

    def _more_text(self, payload: bytes, out: list[bytes]) -> bool:
        """The common chunk, more text of the channel already open, read by a typed decoder that takes only
        that shape (half orjson's cost) and handled without the general walk. False for anything else."""
        try:
            chunk = _decode_text_chunk(payload)
        except msgspec.DecodeError:
            return False
        if len(chunk.choices) != 1:
            return False
        choice = chunk.choices[0]
        ch = self._active.get(choice.index)
        if ch is None or ch.key != "content" or ch.tool is not None:
            return False
        ch.text += choice.delta.content
        if ch.end - ch.sent <= self.hold + (self.step if ch.sent else 0):
            return True  # all of it held: the chunk is dropped
        released = self._release(ch, self._boundary(ch, ch.end - self.hold))
        if released:
            full = orjson.loads(payload)
            full["choices"][0]["delta"]["content"] = released
            out.append(orjson.dumps(full))
        return True

    def _delta(self, idx: int, delta: dict[str, Any], before: list[bytes], final: bool) -> bool:
        """Move the delta's text into its channel, leaving in the delta only what may go now."""
        changed = False
        for key in TEXT_KEYS:
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                released = self._take(idx, key, None, piece, before, final)
                if released:
                    delta[key] = released
                else:
                    del delta[key]
                changed = True
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            kept = []
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(fn, dict):
                    kept.append(call)
                    continue
                position = call.get("index")
                tool = position if isinstance(position, int) else 0
                open_ = self._active.get(idx)
                if ((call.get("id") or fn.get("name")) and open_ is not None
                        and (open_.key, open_.tool) != ("arguments", tool)):
                    # A new call: what came before it goes first (some servers repeat a call's id in every
                    # chunk of its arguments: that is not a new call).
                    self._close(idx, before)
                args = fn.get("arguments")
                if isinstance(args, str) and args:
                    fn["arguments"] = self._take(idx, "arguments", tool, args, before, final)
                    changed = True
                if fn.get("arguments") or len(call) > 2 or len(fn) > 1:
                    kept.append(call)
            if len(kept) != len(calls):
                if kept:
                    delta["tool_calls"] = kept
                else:
                    del delta["tool_calls"]
        return changed

    def _take(self, idx: int, key: str, tool: int | None, piece: str, before: list[bytes], final: bool) -> str:
        """Add ``piece`` to its channel; what may go now (all of it when the choice ``final``-ly ends here)."""
        ch = self._active.get(idx)
        if ch is None or ch.key != key or ch.tool != tool:
            if ch is not None:
                self._close(idx, before)
            ch = self._active[idx] = _Channel(key, tool)
        ch.text += piece
        if final:
            del self._active[idx]
            return self._release(ch, ch.end)
        # The first text of a channel goes as soon as the window is full; later scans wait for STEP more.
        if ch.end - ch.sent <= self.hold + (self.step if ch.sent else 0):
            return ""
        return self._release(ch, self._boundary(ch, ch.end - self.hold))

    @staticmethod
    def _boundary(ch: _Channel, pos: int) -> int:
        """The last point at or before ``pos`` that is not inside a run without whitespace."""
        lo, hi = ch.sent - ch.base, pos - ch.base
        cut = max(ch.text.rfind(" ", lo, hi), ch.text.rfind("\n", lo, hi), ch.text.rfind("\t", lo, hi))
        return ch.sent if cut < 0 else ch.base + cut + 1

    def _release(self, ch: _Channel, cut: int) -> str:
        """Scan, then relay ``[sent, cut)`` (cut moved back before any finding that crosses it)."""
        if cut <= ch.sent:
            return ""
        answer = self.answer
        findings: list[Finding] = []
        if answer.scanning:
            start = max(ch.base, ch.sent - CONTEXT)
            for f in answer._findings(ch.text[start - ch.base:]):
                a, b = f.start + start, f.end + start
                if b <= ch.sent:
                    continue  # relayed (and counted) by an earlier release
                if a < cut < b:
                    cut = max(a, ch.sent)
                findings.append(Finding(f.type, max(a, ch.sent), b, f.score))
            findings = [f for f in findings if f.end <= cut]
        lo = ch.sent - ch.base
        text = ch.text[lo:cut - ch.base]
        if findings:
            shifted = [Finding(f.type, f.start - ch.sent, f.end - ch.sent, f.score) for f in findings]
            text = answer._apply(text, shifted)
        ch.sent = cut
        if self._vendor_text is not None:
            self._vendor_text.append(text)
        # Keep only what a later scan needs to see again.
        drop = max(0, cut - CONTEXT - ch.base)
        if drop:
            ch.text = ch.text[drop:]
            ch.base += drop
        return answer._restore(text, json_text=ch.json)

    def _close(self, idx: int, out: list[bytes]) -> None:
        """Relay all of choice ``idx``'s held text (its channel has ended) as a chunk of its own."""
        ch = self._active.pop(idx)
        text = self._release(ch, ch.end)
        if not text:
            return
        delta: dict[str, Any] = ({"tool_calls": [{"index": ch.tool, "function": {"arguments": text}}]}
                                 if ch.tool is not None else {ch.key: text})
        out.append(orjson.dumps({**self._head, "choices": [{"index": idx, "delta": delta, "finish_reason": None}]}))
