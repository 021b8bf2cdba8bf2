"""The DLP detector: every recognizer over one text, operator patterns, overlaps resolved."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

from interlock.guardrails import pii, secrets
from interlock.guardrails.findings import PHONE_NUMBER, PII_TYPES, SECRET_TYPES, Finding
from interlock.guardrails.gates import (
    ASSIGNED,
    EMAIL,
    IPV6,
    LONG_TOKEN,
    NUMERIC,
    PRIVATE_KEY,
    SLACK,
    dlp_mask,
)
from interlock.guardrails.validators import VALIDATORS


@dataclass(frozen=True, slots=True)
class CustomPattern:
    """An operator's named pattern: a regex, an optional checksum, optional context words.

    With context words, a match counts only when one of them (case-insensitive) occurs within
    `context_window` characters before or after it.
    """

    name: str
    regex: str
    validator: str = "none"
    context: tuple[str, ...] = ()
    context_window: int = 40
    score: float = 0.8

    def __post_init__(self) -> None:
        if self.validator not in VALIDATORS:
            raise ValueError(f"validator must be one of {sorted(VALIDATORS)}, not {self.validator!r}")
        re.compile(self.regex)


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool]
    context: re.Pattern[str] | None
    window: int
    score: float


def _compile(p: CustomPattern) -> _Compiled:
    context = re.compile("|".join(re.escape(w) for w in p.context), re.I) if p.context else None
    return _Compiled(p.name, re.compile(p.regex), VALIDATORS[p.validator], context, p.context_window, p.score)


# When findings overlap, the higher rank wins (then the longer span): a secret over the e-mail inside a
# connection string, a card over the phone number its digits also spell.
def _rank(f: Finding) -> tuple[int, int, float]:
    if f.type in SECRET_TYPES:
        tier = 4
    elif f.type == PHONE_NUMBER:
        tier = 1
    elif f.type in PII_TYPES:
        tier = 2
    else:
        tier = 3
    return (tier, f.end - f.start, f.score)


@dataclass(slots=True)
class DlpDetector:
    """Sensitive data in text. Person names and postal addresses are not detected."""

    phone_region: str = "US"
    entities: frozenset[str] | None = None
    custom: Iterable[CustomPattern] = ()
    generic_entropy: float = secrets.GENERIC_ENTROPY_MIN
    _custom: tuple[_Compiled, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self._custom = tuple(_compile(p) for p in self.custom)

    def scan(self, text: str) -> list[Finding]:
        """Non-overlapping findings in text order."""
        mask = dlp_mask(text)
        if not mask and not self._custom:
            return []  # most texts: no finder's trigger occurs
        found = [f for f in self._all(text, mask) if self.entities is None or f.type in self.entities]
        found.sort(key=lambda f: (f.start, f.end))
        if all(a.end <= b.start for a, b in pairwise(found)):
            return found
        return _resolve(found)

    def _all(self, text: str, mask: int) -> Iterator[Finding]:
        """The findings of the finders whose gate (``gates.dlp_mask``) is set in ``mask``, and the custom patterns'."""
        # One byte per character (non-ASCII -> "?"): byte offsets are string offsets, and substring
        # searches and byte-class scans run over bytes.
        raw = text.encode("ascii", "replace")
        lraw = raw.lower() if mask & (LONG_TOKEN | ASSIGNED) else b""
        if mask & LONG_TOKEN:
            yield from secrets.find_vendor_keys(text, raw)
            yield from secrets.find_jwts(text, raw)
            yield from secrets.find_aws_secrets(text, lraw)
        elif mask & SLACK:  # webhook URLs: their path segments are shorter than a long token
            yield from secrets.find_slack_webhooks(text, raw)
        if mask & PRIVATE_KEY:
            yield from secrets.find_private_keys(text, raw)
        if mask & ASSIGNED:
            yield from secrets.find_assigned_secrets(text, lraw, self.generic_entropy)
        if mask & EMAIL:
            yield from pii.find_emails(text)
        if mask & NUMERIC:
            yield from pii.find_numeric(text, self.phone_region, raw)
        if mask & IPV6:
            yield from pii.find_ipv6(text)
        for p in self._custom:
            yield from _custom_matches(p, text)


def _resolve(found: list[Finding]) -> list[Finding]:
    """Greedy by rank; the kept spans stay sorted, so each overlap test is a bisection."""
    starts: list[int] = []
    kept: list[Finding] = []
    for f in sorted(found, key=_rank, reverse=True):
        i = bisect.bisect_left(starts, f.start)
        if (i < len(kept) and kept[i].start < f.end) or (i > 0 and kept[i - 1].end > f.start):
            continue
        starts.insert(i, f.start)
        kept.insert(i, f)
    return kept


def _custom_matches(p: _Compiled, text: str) -> Iterator[Finding]:
    for m in p.pattern.finditer(text):
        if m.end() == m.start() or not p.check(m.group()):
            continue
        if p.context is not None and not p.context.search(
            text, max(0, m.start() - p.window), min(len(text), m.end() + p.window)
        ):
            continue
        yield Finding(p.name, m.start(), m.end(), p.score)
