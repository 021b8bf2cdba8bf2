"""Which prompts the semantic cache takes (single-turn ones) and what of them forms the bucket.

Kept apart from ``semantic.py`` so that the cache decides this without importing numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Stands for the user's text in a bucket's request (the bucket's digest also tags its API, so it is
#: never an exact key: ``ResponseCache.lookup``).
_MASK = "\x00user-text"
_SYSTEM_ROLES = ("system", "developer")
_PART_KEYS = frozenset({"type", "text", "cache_control"})


def single_turn(request: Mapping[str, Any]) -> tuple[dict[str, Any], str] | None:
    """``(the request with the user's text masked, the text)`` for a single-turn prompt, else None."""
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
    masked = {**request, "messages": [*messages[:-1], {"role": "user", "content": _MASK}]}
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
