"""Rule-based prompt-injection and jailbreak detector over normalised and decoded text."""

from __future__ import annotations

from dataclasses import dataclass

from interlock.guardrails.injection_rules import Rule, compile_rules
from interlock.guardrails.normalize import decoded_payloads, normalize, rot13, variants

# Chosen on the train split by bench/guardrails.py --tune: the lowest threshold that keeps the
# false-positive rate on benign prompts within the target.
DIRECT_THRESHOLD = 0.5
# Text inside data (e-mails, tool results) is scored with the indirect rules as well.
INDIRECT_THRESHOLD = 0.5

_ROT13_HINTS = ("ignore", "instruction", "prompt", "password", "disregard", "forget")


@dataclass(frozen=True, slots=True)
class InjectionResult:
    score: float
    rules: tuple[str, ...]
    flagged: bool


class InjectionDetector:
    """Scores text in [0, 1]: one minus the product of (1 - weight) over the distinct rules that match."""

    def __init__(self, threshold: float = DIRECT_THRESHOLD, indirect_threshold: float = INDIRECT_THRESHOLD) -> None:
        self.threshold = threshold
        self.indirect_threshold = indirect_threshold
        rules = compile_rules()
        self._direct = tuple(r for r in rules if not r.indirect)
        self._all = rules

    def check(self, text: str, indirect: bool = False) -> InjectionResult:
        """Score a prompt (`indirect=False`) or data the model will read, such as an e-mail or a tool result."""
        rules = self._all if indirect else self._direct
        norm = normalize(text)
        views = [norm, *variants(norm)]
        rotated = rot13(norm)
        if any(h in rotated for h in _ROT13_HINTS):
            views.append(rotated)
        if len(text) >= 16:
            views.extend(decoded_payloads(text))
        hits: dict[str, float] = {}
        for view in views:
            for rule in rules:
                if rule.name not in hits and _matches(rule, view):
                    hits[rule.name] = rule.weight
        keep = 1.0
        for w in hits.values():
            keep *= 1.0 - w
        score = 1.0 - keep
        limit = self.indirect_threshold if indirect else self.threshold
        return InjectionResult(score, tuple(hits), score >= limit)

    def score(self, text: str, indirect: bool = False) -> float:
        return self.check(text, indirect).score


def _matches(rule: Rule, view: str) -> bool:
    return any(t in view for t in rule.triggers) and rule.pattern.search(view) is not None
