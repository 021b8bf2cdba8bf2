"""Anthropic's prompt cache: explicit ``cache_control`` breakpoints over content blocks.

The automatic cache in ``cache.py`` (OpenAI, Gemini) caches any long prefix;
Anthropic caches nothing unless the request marks blocks. A request is a list
of blocks in render order (each tool, each system block, each message's
content blocks) and a prefix is named by a hash chained over the blocks'
content *without* their markers, so moving a marker does not change what the
blocks before it hash to. Per request:

* each marker looks for a live prefix written earlier at its own block
  boundary, then at up to :data:`LOOKBACK_BLOCKS` boundaries before it; the
  longest found is read, and reading renews its lifetime;
* each marker writes the prefix up to and including its block; the tokens
  from the read prefix to the last marker are reported as written, each
  stretch under the lifetime (5 minutes or 1 hour) of the marker that ends it;
* a marked prefix shorter than the model's minimum is neither read nor written.

Token positions come from the catalog's chat estimate, the same count as the
request's prompt tokens: the tools, the system prompt and each message add up
to it, and a piece with several blocks shares its tokens among them by each
block's own estimate.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

LOOKBACK_BLOCKS = 20
MAX_BREAKPOINTS = 4
TTL_5M = 300.0
TTL_1H = 3600.0
TTLS = {"5m": TTL_5M, "1h": TTL_1H}

DEFAULT_MIN_TOKENS = 1024  # Sonnet, and Opus up to 4.1
OLD_HAIKU_MIN_TOKENS = 2048  # Claude 3 and 3.5 Haiku
LARGE_MIN_TOKENS = 4096  # Haiku 4.5, Opus 4.5 and 4.6


def min_cacheable_tokens(model_id: str) -> int:
    """The shortest prefix Anthropic caches for a model, per its prompt-caching page.

    ``anthropic/claude-3-5-haiku-20241022`` → 2,048; ``anthropic/claude-sonnet-4-5`` → 1,024.
    """
    name = model_id.rpartition("/")[2].replace(".", "-")
    if "haiku" in name:
        return OLD_HAIKU_MIN_TOKENS if name.startswith("claude-3") else LARGE_MIN_TOKENS
    if "opus-4-5" in name or "opus-4-6" in name:
        return LARGE_MIN_TOKENS
    return DEFAULT_MIN_TOKENS


@dataclass(frozen=True, slots=True)
class CacheBlock:
    content: bytes  # canonical bytes of the block without its marker
    weight: dict[str, Any]  # the block alone as an OpenAI-shaped fragment: its share of its unit's tokens
    extra_tokens: int = 0  # documents, which the chat estimate does not count
    ttl: float | None = None  # the marker's lifetime in seconds; None: not marked


@dataclass(frozen=True, slots=True)
class CacheUnit:
    """A piece the chat estimate counts as a whole (the tools, the system prompt, one message), and its blocks.

    Its tokens are ``count(count) - count(base)`` plus its blocks' documents, so
    the units of a request add up to its prompt estimate (minus the reply priming).
    """

    count: dict[str, Any]
    blocks: list[CacheBlock]
    base: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


def block_ends(
    units: Sequence[CacheUnit], count: Callable[[dict[str, Any]], int], limit: int
) -> tuple[list[CacheBlock], list[int]]:
    """The blocks up to the last marked one, each with the prompt tokens up to its end (capped at ``limit``).

    A unit's tokens are shared among its blocks by each block's own estimate.
    """
    marked = [i for i, unit in enumerate(units) if any(block.ttl is not None for block in unit.blocks)]
    if not marked:
        return [], []
    empty = count({})
    blocks: list[CacheBlock] = []
    ends: list[int] = []
    total = 0
    for unit in units[: marked[-1] + 1]:
        size = max(0, count(unit.count) - count(unit.base)) + sum(b.extra_tokens for b in unit.blocks)
        if len(unit.blocks) == 1:
            weights = [1]
        else:
            weights = [max(0, count(b.weight) - empty) + b.extra_tokens for b in unit.blocks]
            if not any(weights):
                weights = [1] * len(unit.blocks)
        share, whole = 0, sum(weights)
        for block, weight in zip(unit.blocks, weights, strict=True):
            share += weight
            blocks.append(block)
            ends.append(min(limit, total + size * share // whole))
        total += size
    return blocks, ends


class BreakpointCache:
    """Prefixes written at marked block boundaries, per scope (model), each with its own lifetime."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic, *, enabled: bool = True) -> None:
        self._max = max_entries
        self._clock = clock
        self._enabled = enabled and max_entries > 0
        self._entries: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # key -> (expires, ttl)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup_and_store(
        self, scope: str, blocks: Sequence[CacheBlock], ends: Sequence[int], *, min_tokens: int
    ) -> CacheUsage:
        """Read and write this request's marked prefixes; ``ends[i]``: prompt tokens up to block ``i``'s end."""
        marks = [i for i, block in enumerate(blocks) if block.ttl is not None]
        if not marks or not self._enabled:
            return CacheUsage()
        now = self._clock()
        digest = hashlib.blake2b(scope.encode(), digest_size=16)
        keys: list[bytes] = []
        for block in blocks[: marks[-1] + 1]:  # nothing after the last marker matters
            digest.update(hashlib.blake2b(block.content, digest_size=16).digest())
            keys.append(digest.copy().digest())
        marks = [m for m in marks if ends[m] >= min_tokens]
        hit = -1
        for mark in marks:
            for k in range(mark, max(hit, mark - LOOKBACK_BLOCKS - 1), -1):
                if self._live(keys[k], now):
                    hit = k
                    break
        read = ends[hit] if hit >= 0 else 0
        if hit >= 0:
            self._put(keys[hit], self._entries[keys[hit]][1], now)  # a read renews the lifetime
        write_5m = write_1h = 0
        start = read
        for mark in marks:
            ttl = blocks[mark].ttl or TTL_5M
            if ends[mark] > start:  # the stretch this marker ends is written under its lifetime
                if ttl >= TTL_1H:
                    write_1h += ends[mark] - start
                else:
                    write_5m += ends[mark] - start
                start = ends[mark]
            self._put(keys[mark], ttl, now)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return CacheUsage(read=read, write_5m=write_5m, write_1h=write_1h)

    def _live(self, key: bytes, now: float) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        if entry[0] <= now:
            del self._entries[key]
            return False
        return True

    def _put(self, key: bytes, ttl: float, now: float) -> None:
        old = self._entries.get(key)
        if old is not None and old[0] > now + ttl:  # a live 1-hour entry outlasts a 5-minute rewrite
            expires, ttl = old
        else:
            expires = now + ttl
        self._entries[key] = (expires, ttl)
        self._entries.move_to_end(key)
