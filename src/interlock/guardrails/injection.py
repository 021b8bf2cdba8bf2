"""Rule-based prompt-injection and jailbreak detector over normalised and decoded text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ahocorasick

from interlock.guardrails.gates import LEET, PAYLOAD, ROT13, views_mask
from interlock.guardrails.injection_rules import Rule, compile_rules
from interlock.guardrails.normalize import decoded_payloads, leet_map, normalize, rot13

if TYPE_CHECKING:  # the classifier needs numpy and the model package: imported only by whoever builds one
    from interlock.guardrails.classifier import InjectionClassifier

# Chosen on the train split (bench/guardrails.py prints the choice): the lowest threshold whose
# false-positive rate on the benign prompts stays within the target.
DIRECT_THRESHOLD = 0.5
# Text inside data (e-mails, tool results) is scored with the indirect rules as well.
INDIRECT_THRESHOLD = 0.6

_CORE_TRIGGERS = frozenset({
    b"ignor", b"disregard", b"forg", b"instruction", b"prompt", b"passw", b"anything now", b"dan ",
    b"developer mode", b"pretend", b"restrict", b"verg", b"anweisung",
})


@dataclass(frozen=True, slots=True)
class InjectionResult:
    """`rules`: the rules that matched, in the order found (scanning stops once the score reaches 0.99)."""

    score: float
    rules: tuple[str, ...]
    flagged: bool

    def __init__(self, score: float, rules: tuple[str, ...], flagged: bool) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "flagged", flagged)


class InjectionDetector:
    """Scores text in [0, 1]: one minus the product of (1 - weight) over the distinct rules that match.

    Views scanned: the normalised text, its leetspeak-mapped form, its rot13 form, and base64 or hex
    payloads decoded. A rule's pattern runs only near its trigger substrings; weak rules (role-play
    framing, "you are now") count only once a strong one has matched.

    With a ``classifier`` (``classifier.py``), a text the rules do not flag is also scored by it; the
    score is the higher of the two, and ``classifier`` is named in ``rules`` when it flags the text.
    """

    def __init__(self, threshold: float = DIRECT_THRESHOLD, indirect_threshold: float = INDIRECT_THRESHOLD,
                 classifier: InjectionClassifier | None = None) -> None:
        self.threshold = threshold
        self.indirect_threshold = indirect_threshold
        self.classifier = classifier
        rules = compile_rules()
        self._strong = _Table(r for r in rules if not r.indirect and not r.weak)
        # Decoded and de-obfuscated views are searched for the main triggers only.
        self._core = self._strong.only(_CORE_TRIGGERS)
        self._weak = _Table(r for r in rules if r.weak)
        self._indirect = _Table(r for r in rules if r.indirect)

    def check(self, text: str, indirect: bool = False) -> InjectionResult:
        """Score a prompt (`indirect=False`) or data the model will read, such as an e-mail or a tool result."""
        raw = text.encode("utf-8", "surrogatepass")
        norm = raw.lower() if len(raw) == len(text) else normalize(text).encode("utf-8", "surrogatepass")
        views = [norm]
        mask = views_mask(norm, raw)  # the three checks below in one C call (gates.py)
        if mask & LEET:
            views.append(leet_map(norm))
        if mask & ROT13:
            views.append(rot13(norm))
        if mask & PAYLOAD and len(norm) >= 16:
            views.extend(p.encode("utf-8", "surrogatepass") for p in decoded_payloads(raw))
        hits: dict[str, float] = {}
        pairs = [(v, v.decode("latin-1")) for v in views]
        passes = [(*pairs[0], self._strong)] + [(*pair, self._core) for pair in pairs[1:]]
        if indirect:
            passes += [(*pair, self._indirect) for pair in pairs]
        for view, latin, table in passes:
            if _scan(view, latin, table, hits):
                break
        if hits and _keep(hits) > _SATURATED:
            for view, latin in pairs:
                if _scan(view, latin, self._weak, hits):
                    break
        score = round(1.0 - _keep(hits), 6)
        limit = self.indirect_threshold if indirect else self.threshold
        names = tuple(hits)
        # Once the rules flag a text the classifier cannot change the verdict: its cost is saved.
        if self.classifier is not None and score < limit:
            learned = self.classifier.score(text, score, indirect, INDIRECT_THRESHOLD if indirect else DIRECT_THRESHOLD)
            if learned >= limit:
                names += ("classifier",)
            score = max(score, round(learned, 6))
        return InjectionResult(score, names, score >= limit)

    def score(self, text: str, indirect: bool = False) -> float:
        return self.check(text, indirect).score


class _Table:
    """Trigger substring -> the rules it gates, and an Aho-Corasick automaton (``pyahocorasick``) that finds
    every trigger in one pass over a view. A trigger that contains a shorter one ("system prompt", "prompt")
    is folded into it: where the longer occurs, the shorter does too, and the window around it covers the
    match. ``only``: search these triggers alone."""

    __slots__ = ("automaton", "rules")

    def __init__(self, rules: Iterable[Rule], only: frozenset[bytes] | None = None) -> None:
        rules = list(rules)
        triggers = {t for r in rules for t in r.triggers}
        table: dict[bytes, list[Rule]] = {}
        for rule in rules:
            for t in rule.triggers:
                base = min((u for u in triggers if u in t), key=len)
                if (only is None or base in only) and rule not in table.setdefault(base, []):
                    table[base].append(rule)
        self.rules = {t: tuple(rs) for t, rs in table.items() if rs}
        self.automaton = ahocorasick.Automaton()
        for i, (trigger, gated) in enumerate(self.rules.items()):
            # Views are matched as latin-1 text: one character per byte, so positions are byte offsets.
            self.automaton.add_word(trigger.decode("latin-1"), (i, len(trigger), gated))
        if self.rules:
            self.automaton.make_automaton()

    def only(self, triggers: frozenset[bytes]) -> _Table:
        """The same table searched for ``triggers`` only."""
        return _Table({r for rs in self.rules.values() for r in rs}, triggers)


# Scanning stops once the score reaches 0.99: an attack-heavy text costs no more than it must.
_SATURATED = 0.01
# A pattern runs on a window around each occurrence of its trigger (the first few), not the whole text.
_BEFORE, _AFTER, _OCCURRENCES = 100, 100, 6


def _scan(view: bytes, text: str, table: _Table, hits: dict[str, float]) -> bool:
    """Add the rules that match (``text`` is ``view`` as latin-1); True once the score is saturated (nothing
    more would change the verdict)."""
    if not table.rules:
        return False
    for at, rules in _by_automaton(text, table):
        lo, hi = max(0, at - _BEFORE), at + _AFTER
        for rule in rules:
            if rule.name not in hits and rule.pattern.search(view, lo, hi) is not None:
                hits[rule.name] = rule.weight
                if _keep(hits) <= _SATURATED:
                    return True
    return False


# Every trigger of a table in one automaton pass over the view, the first few occurrences of each: faster than a
# bytes.find per trigger on benign text, long or short (docs/guardrails.md, Speed, has the side-by-side figures).
def _by_automaton(text: str, table: _Table) -> Iterator[tuple[int, tuple[Rule, ...]]]:
    seen: dict[int, int] = {}
    for end, (i, size, rules) in table.automaton.iter(text):
        n = seen.get(i, 0)
        if n < _OCCURRENCES:
            seen[i] = n + 1
            yield end + 1 - size, rules


def _keep(hits: dict[str, float]) -> float:
    keep = 1.0
    for w in hits.values():
        keep *= 1.0 - w
    return keep
