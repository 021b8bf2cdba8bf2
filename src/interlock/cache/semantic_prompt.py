"""Which prompts the semantic cache takes (single-turn ones) and what of them forms the bucket.

Besides everything but the user's text, the bucket holds what a paraphrase must repeat word for word and
an embedding barely sees: the text's numbers, in order, and how many negations it has ("17 times 23" and
"17 times 24", "is it safe" and "is it not safe" score 0.91 and 0.99 with the model, but are never in one
bucket). Kept apart from ``semantic.py`` so that the cache decides this without importing numpy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Stands for the user's text in a bucket's request (the bucket's digest also tags its API, so it is
#: never an exact key: ``ResponseCache.lookup``).
_MASK = "\x00user-text"
_SYSTEM_ROLES = ("system", "developer")
_PART_KEYS = frozenset({"type", "text", "cache_control"})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|nobody|nor|neither|cannot|without)\b|n['\u2019]t\b",
                       re.IGNORECASE)


def exact_terms(text: str) -> tuple[list[str], int]:
    """The user text's numbers in order, and its number of negations: part of the bucket."""
    return _NUMBER.findall(text), len(_NEGATION.findall(text))


def single_turn(request: Mapping[str, Any]) -> tuple[dict[str, Any], str] | None:
    """``(the request with the user's text replaced by its exact terms, the text)`` for a single-turn prompt,
    else None."""
    if request.get("tools") or request.get("functions"):
        return None
    messages = request.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 2:
        return None
    if len(messages) == 2 and not (isinstance(messages[0], dict) and messages[0].get("role") in _SYSTEM_ROLES):
        return None
    user = messages[-1]
    if not isinstance(user, dict) or user.get("role") != "user" or set(user) - {"role", "content"}:
        return None
    text = _text(user.get("content"))
    if not text or not text.strip():
        return None
    numbers, negations = exact_terms(text)
    masked = {**request, "messages": [*messages[:-1], {"role": "user", "content": _MASK, "numbers": numbers,
                                                       "negations": negations}]}
    return masked, text


def _text(content: object) -> str | None:
    """A user message's text: a string, or text parts only (joined by newlines); None for anything else."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text" or set(part) - _PART_KEYS:
            return None
        text = part.get("text")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return "\n".join(texts)
