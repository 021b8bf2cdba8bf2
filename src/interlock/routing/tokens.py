"""Prompt token counts for routing, memoised per message.

The cost strategy and the context-window filter need the prompt's size
(``catalog.estimate_chat_tokens``), and tokenising is the most expensive step
of a routing decision. Chat clients resend the same system prompt and the
whole conversation history on every turn, so the count of each plain-text
message is remembered (bounded LRU, short messages only): a new turn
tokenises only what is new. For plain-text requests the count is additive
over messages - the reply priming plus each message's framing and text -
which is exactly what ``estimate_chat_tokens`` computes; anything else
(tools, images, response formats) is counted whole, unmemoised.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from interlock.catalog import estimate_chat_tokens
from interlock.catalog.tokens import (
    REPLY_PRIMING,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    encoding_name_for,
    get_encoding,
)
from interlock.core.model import Model

_MAX_ENTRIES = 2048
_MAX_CHARS = 8192


class TokenMemo:
    def __init__(self, entries: int = _MAX_ENTRIES, max_chars: int = _MAX_CHARS) -> None:
        self.entries = entries
        self.max_chars = max_chars
        self._counts: OrderedDict[tuple[str, str, str, str], int] = OrderedDict()
        self._roles: dict[tuple[str, str], int] = {}

    def _small(self, encoding: str, text: str, encode: Callable[[str], list[int]]) -> int:
        n = self._roles.get((encoding, text))
        if n is None:
            n = len(encode(text)) if text else 0
            if len(self._roles) < 64:
                self._roles[(encoding, text)] = n
        return n

    def count(self, request: Mapping[str, Any], model: Model | None) -> int:
        if request.get("tools") or request.get("functions") or request.get("response_format"):
            return estimate_chat_tokens(request, model)
        messages = request.get("messages") or ()
        keys: list[tuple[str, str, str, str]] = []
        encoding = encoding_name_for(model)
        for message in messages:
            if not isinstance(message, dict) or len(message) > 3:
                return estimate_chat_tokens(request, model)
            content = message.get("content")
            name = message.get("name")
            if not isinstance(content, str) or len(content) > self.max_chars or (
                    name is not None and not isinstance(name, str)) or len(message) != 2 + (name is not None):
                return estimate_chat_tokens(request, model)
            keys.append((encoding, str(message.get("role", "")), name or "", content))
        total = REPLY_PRIMING
        counts = self._counts
        encode = get_encoding(encoding).encode_ordinary
        for key in keys:
            hit = counts.get(key)
            if hit is None:
                # estimate_chat_tokens' framing for one plain message (tests check they agree).
                _, role, name, content = key
                hit = TOKENS_PER_MESSAGE + self._small(encoding, role, encode) + len(encode(content))
                if name:
                    hit += TOKENS_PER_NAME + len(encode(name))
                counts[key] = hit
                if len(counts) > self.entries:
                    counts.popitem(last=False)
            else:
                counts.move_to_end(key)
            total += hit
        return total
