"""Plausible English for simulated answers, cut into token-sized pieces.

No corpus is downloaded: a small phrase grammar (openers, subjects, verbs,
objects, tails) with words borrowed from the prompt reads like a generic but
coherent answer, which is all tests, demos and benchmarks need. Text is built
as a list of *pieces* (a word with its leading space, or a punctuation mark),
each close to one token, so streams can be paced per token and ``max_tokens``
cuts at a token boundary. All randomness comes from the caller's seeded
:class:`random.Random`: the same request always yields the same words.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_OPENERS = (
    "In practice,", "Generally speaking,", "As a result,", "For example,", "In most cases,", "By contrast,",
    "Over time,", "At its core,", "To be clear,", "In short,", "On the other hand,", "With that in mind,",
    "Put simply,", "In many teams,", "Most of the time,",
)
_SUBJECTS = (
    "the system", "a careful design", "the team", "this approach", "the model", "each request", "the service",
    "a simple test", "the first step", "the data", "a good plan", "the process", "every release", "the result",
    "a small change", "the main idea", "the user", "a clear interface",
)
_VERBS = (
    "improves", "reduces", "depends on", "balances", "supports", "reveals", "requires", "simplifies",
    "protects", "measures", "shapes", "explains", "changes", "clarifies", "strengthens", "limits",
)
_OBJECTS = (
    "overall reliability", "the cost of each call", "latency under load", "the quality of answers",
    "how people work", "the long term plan", "the shape of the data", "the final outcome", "common mistakes",
    "the next decision", "the whole workflow", "the underlying problem", "the expected behaviour",
    "the trade-offs involved", "the rest of the system",
)
_TAILS = (
    "without extra effort", "for most users", "in a predictable way", "when traffic grows", "over the long run",
    "at a reasonable cost", "in small steps", "across the board", "with fewer surprises", "before it matters",
    "as the project grows", "from the very start",
)
_LINKS = ("and", "because", "while", "so", "although", "which means")

_PIECE = re.compile(r"\s*[\w'-]+|[^\w\s]")
_TOPIC = re.compile(r"[A-Za-z][A-Za-z-]*|[^A-Za-z\s]+")
_STOPWORDS = frozenset(
    ["about", "above", "after", "again", "against", "being", "below", "between", "could", "doing", "during", "further", "having", "itself", "other", "should", "their", "there", "these", "those", "through", "under", "until", "which", "while", "would", "write", "please", "answer", "explain", "tell", "describe", "short", "sentence", "sentences", "words", "using"]
)


def topic_words(prompt: str, limit: int = 6) -> list[str]:
    """Short noun-ish phrases of the prompt (runs of up to two content words), to sound on-topic."""
    phrases: dict[str, None] = {}
    run: list[str] = []
    for match in _TOPIC.finditer(prompt[-4000:] + " ."):
        word = match.group()
        if word.lower() in _STOPWORDS or len(word) < 4:
            if run:
                phrases.setdefault(" ".join(run[-2:]), None)
            run = []
            continue
        run.append(word if any(c.isupper() for c in word[1:]) else word.lower())
    return list(phrases)[:limit]


def _sentence(rng: random.Random, topics: list[str]) -> str:
    obj = rng.choice(_OBJECTS)
    subject = rng.choice(_SUBJECTS)
    if topics and rng.random() < 0.35:
        if rng.random() < 0.6:
            obj = f"the {rng.choice(topics)}"
        else:
            subject = rng.choice(("thinking about", "working with", "getting")) + f" {rng.choice(topics)} right"
    parts = []
    if rng.random() < 0.4:
        parts.append(rng.choice(_OPENERS))
    parts += [subject, rng.choice(_VERBS), obj]
    if rng.random() < 0.5:
        parts.append(rng.choice(_TAILS))
    if rng.random() < 0.3:
        parts += [rng.choice(_LINKS), rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
    text = " ".join(parts)
    return text[0].upper() + text[1:] + ("." if rng.random() < 0.92 else "!")


def split_pieces(text: str) -> list[str]:
    """Cut text into token-like pieces (words keep their leading whitespace)."""
    pieces = _PIECE.findall(text)
    rest = len(text) - sum(len(p) for p in pieces)
    if rest:  # trailing whitespace the pattern does not capture
        pieces.append(text[len(text) - rest :])
    return pieces


class PieceCounter:
    """Token counts of pieces, memoised: the vocabulary is small and counting is the hot path."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count
        self._memo: dict[str, int] = {}

    def piece(self, piece: str) -> int:
        n = self._memo.get(piece)
        if n is None:
            n = self._count(piece)
            if len(self._memo) < 50_000:  # topic words make the vocabulary open-ended: bound it
                self._memo[piece] = n
        return n

    def text(self, text: str) -> int:
        return self._count(text)


def answer_pieces(
    rng: random.Random,
    topics: list[str],
    target_tokens: int,
    limit: int | None,
    counter: PieceCounter,
) -> tuple[list[str], bool]:
    """Sentences until about ``target_tokens``; cut at ``limit`` tokens.

    Returns the pieces and whether the limit cut the text (finish reason ``length``).
    """
    pieces: list[str] = []
    used = 0
    sentences = 0
    while used < target_tokens:
        sentence = _sentence(rng, topics)
        prefix = "" if not pieces else ("\n\n" if sentences % rng.randint(3, 5) == 0 else " ")
        new = split_pieces(prefix + sentence)
        for piece in new:
            cost = counter.piece(piece)
            if limit is not None and used + cost > limit:
                return _fit(pieces, limit, counter), True
            pieces.append(piece)
            used += cost
        sentences += 1
    return pieces, False


def _fit(pieces: list[str], limit: int, counter: PieceCounter) -> list[str]:
    """Drop trailing pieces until the joined text really counts ``<= limit`` tokens."""
    while pieces and counter.text("".join(pieces)) > limit:
        pieces.pop()
    return pieces


def apply_stop(pieces: list[str], stops: list[str]) -> tuple[list[str], str | None]:
    """Cut before the first stop sequence, like a vendor does; returns pieces and the sequence that matched."""
    if not stops:
        return pieces, None
    text = "".join(pieces)
    found = [(i, s) for s in stops if s and (i := text.find(s)) >= 0]
    if not found:
        return pieces, None
    cut, matched = min(found)
    out: list[str] = []
    size = 0
    for piece in pieces:
        if size + len(piece) <= cut:
            out.append(piece)
            size += len(piece)
        else:
            if cut > size:
                out.append(piece[: cut - size])
            break
    return out, matched


def chop(text: str, rng: random.Random, lo: int = 3, hi: int = 12) -> list[str]:
    """Split text (tool arguments, JSON) into stream deltas of a few characters."""
    out: list[str] = []
    i = 0
    while i < len(text):
        step = rng.randint(lo, hi)
        out.append(text[i : i + step])
        i += step
    return out


def thinking_text(rng: random.Random, topics: list[str], tokens: int, counter: PieceCounter) -> list[str]:
    """Visible reasoning for formats that stream it (Anthropic thinking blocks)."""
    lead = "Let me think about this step by step. "
    pieces = split_pieces(lead)
    body, _ = answer_pieces(rng, topics, max(tokens - len(pieces), 1), max(tokens - len(pieces), 1), counter)
    return pieces + body
