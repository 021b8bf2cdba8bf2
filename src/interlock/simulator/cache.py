"""Automatic prompt-prefix caching, as OpenAI and Gemini report it.

These vendors cache the longest previously seen prompt prefix of at least 1,024
tokens, for a few minutes, and OpenAI reports hits in 128-token increments.
(Anthropic caches only what ``cache_control`` marks: ``anthropic_cache.py``.)
The simulator tracks prefixes at *prompt unit* boundaries (tool definitions,
then each message): the common pattern of a long shared system prompt or
conversation history with a changing last turn is reported exactly like a
vendor would; a prefix that diverges inside one message counts only up to the
last whole unit before it, which slightly under-reports. Memory is bounded by
``max_entries`` (oldest evicted) and entries expire after ``ttl`` seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

MIN_CACHED_TOKENS = 1024
CACHE_INCREMENT = 128


def cached_amount(prefix_tokens: int) -> int:
    """Tokens reported as cached for a matched prefix: 0 below 1,024, then 128-token steps."""
    if prefix_tokens < MIN_CACHED_TOKENS:
        return 0
    return MIN_CACHED_TOKENS + (prefix_tokens - MIN_CACHED_TOKENS) // CACHE_INCREMENT * CACHE_INCREMENT


class PrefixCache:
    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup_and_store(self, scope: str, units: Sequence[bytes], unit_tokens: Sequence[int]) -> int:
        """The longest live cached prefix of this prompt (tokens), then remember its prefixes.

        ``scope`` separates models (a cache is per model).
        """
        if self._max == 0 or self._ttl == 0:
            return 0
        now = self._clock()
        digest = hashlib.blake2b(scope.encode(), digest_size=16)
        keys: list[tuple[bytes, int]] = []
        total = 0
        for unit, tokens in zip(units, unit_tokens, strict=True):
            digest.update(hashlib.blake2b(unit, digest_size=16).digest())
            total += tokens
            if total >= MIN_CACHED_TOKENS:
                keys.append((digest.copy().digest(), total))
        matched = 0
        for key, tokens in reversed(keys):
            expires = self._entries.get(key)
            if expires is not None and expires > now:
                matched = tokens
                break
        for key, _ in keys:
            self._entries[key] = now + self._ttl
            self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return matched
