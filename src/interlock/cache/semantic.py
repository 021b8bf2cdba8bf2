"""The semantic cache: a single-turn prompt whose user text means the same as a stored one's is a hit.

Only single-turn prompts take part (``semantic_prompt.py``: no tools; at most one system or developer message,
then exactly one user message of text). Everything in the exact key but the user's text (of which only its
numbers and negations count) - inbound API, stream flag, policy, models, project, namespace, system prompt,
every parameter - is digested into a *bucket*; within a bucket the index keeps, per stored answer, the user
text's embedding (all-MiniLM-L6-v2, the guardrails classifier's model), the answer's exact key, when it was
made and when it expires. After an exact miss the prompt is embedded on a worker thread and compared with its
bucket in one matrix product; the best at or above the threshold names an exact key, whose entry the backend
then serves. The backend stays the truth: an index entry whose answer was deleted or expired is a miss, and
is dropped.

The index is per worker (with either backend): see docs/cache.md for why it is not shared in Redis.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from interlock.cache.store import Selector

Vector = npt.NDArray[np.float32]
T = TypeVar("T")
R = TypeVar("R")

class Offload(Protocol):
    """Runs ``fn(arg)`` off the event loop (``pipeline.guard.off_loop``: the guardrails classifier's threads)."""

    def __call__(self, fn: Callable[[T], R], arg: T, /) -> Awaitable[R]: ...


class _Bucket:
    """One bucket's vectors as rows of a matrix that grows by doubling; a removed row takes the last one's place."""

    __slots__ = ("created", "expires", "keys", "n", "slots", "vectors")

    def __init__(self, dim: int) -> None:
        self.vectors: Vector = np.empty((4, dim), dtype=np.float32)
        self.created = np.empty(4, dtype=np.float64)  # wall time, for deletes (made before a delete: gone)
        self.expires = np.empty(4, dtype=np.float64)  # monotonic time, the answer's TTL
        self.keys: list[str] = []
        self.slots: dict[str, int] = {}
        self.n = 0

    def put(self, key: str, vector: Vector, created: float, expires: float) -> bool:
        """Adds or replaces ``key``'s row; True when it is a new row."""
        row = self.slots.get(key)
        new = row is None
        if row is None:
            if self.n == len(self.vectors):
                self.vectors = np.concatenate([self.vectors, np.empty_like(self.vectors)])
                self.created = np.concatenate([self.created, np.empty_like(self.created)])
                self.expires = np.concatenate([self.expires, np.empty_like(self.expires)])
            row = self.n
            self.n += 1
            self.keys.append(key)
            self.slots[key] = row
        self.vectors[row] = vector
        self.created[row] = created
        self.expires[row] = expires
        return new

    def remove(self, rows: list[int]) -> None:
        """Removes ``rows`` (from the highest down, so a row moved into a gap is never one to remove)."""
        for row in sorted(rows, reverse=True):
            last = self.n - 1
            key = self.keys[row]
            if row != last:
                moved = self.keys[last]
                self.vectors[row] = self.vectors[last]
                self.created[row] = self.created[last]
                self.expires[row] = self.expires[last]
                self.keys[row] = moved
                self.slots[moved] = row
            self.keys.pop()
            del self.slots[key]
            self.n = last


class SemanticIndex:
    """Per worker: bucket digest -> the vectors of its stored prompts, at most ``max_entries`` in all (the least
    recently used bucket gives up its oldest entry first)."""

    def __init__(self, max_entries: int, clock: Callable[[], float], dim: int = 384) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self.dim = dim
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.entries = 0

    def __len__(self) -> int:
        return self.entries

    def best(self, bucket: str, vector: Vector) -> tuple[str, float] | None:
        """The stored prompt most similar to ``vector`` in ``bucket`` (its exact key, the cosine); expired
        entries are dropped first."""
        found = self._buckets.get(bucket)
        if found is None:
            return None
        self._buckets.move_to_end(bucket)
        expired = np.flatnonzero(found.expires[:found.n] <= self.clock())
        if expired.size:
            self._remove(bucket, found, [int(r) for r in expired])
            if not found.n:
                return None
        sims = found.vectors[:found.n] @ vector
        row = int(np.argmax(sims))
        return found.keys[row], min(1.0, float(sims[row]))

    def add(self, bucket: str, key: str, vector: Vector, created: float, ttl_s: float) -> None:
        found = self._buckets.get(bucket)
        if found is None:
            found = self._buckets[bucket] = _Bucket(self.dim)
        self._buckets.move_to_end(bucket)
        if found.put(key, vector, created, self.clock() + ttl_s):
            self.entries += 1
        while self.entries > self.max_entries:
            oldest_bucket, victim = next(iter(self._buckets.items()))
            self._remove(oldest_bucket, victim, [int(np.argmin(victim.created[:victim.n]))])

    def discard(self, bucket: str, key: str) -> None:
        """Drops ``key`` from ``bucket`` (its answer is gone from the backend)."""
        found = self._buckets.get(bucket)
        row = found.slots.get(key) if found is not None else None
        if found is not None and row is not None:
            self._remove(bucket, found, [row])

    def delete(self, selector: Selector, at: float) -> int:
        """Entries whose exact key ``selector`` matches, made before ``at`` (as the backends delete them)."""
        removed = 0
        for name, found in list(self._buckets.items()):
            rows = [row for row, key in enumerate(found.keys)
                    if found.created[row] <= at and selector.matches(key)]
            if rows:
                self._remove(name, found, rows)
                removed += len(rows)
        return removed

    def _remove(self, name: str, bucket: _Bucket, rows: list[int]) -> None:
        bucket.remove(rows)
        self.entries -= len(rows)
        if not bucket.n:
            del self._buckets[name]


class SemanticCache:
    """The index with the encoder's ``embed`` (None for a text longer than the model's window) and the
    threads it runs on."""

    def __init__(self, embed: Callable[[str], Vector | None], offload: Offload, index: SemanticIndex) -> None:
        self.embed = embed
        self.offload = offload
        self.index = index

    async def vector(self, text: str) -> Vector | None:
        """``text``'s embedding, computed on a worker thread (~10-20 ms of CPU for a short prompt)."""
        return await self.offload(self.embed, text)
