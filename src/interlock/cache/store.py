"""Where cached answers live: process memory (bounded by bytes, least recently used first out) or Redis
(shared by every worker and replica; values compressed, keys short, entries capped; an outage is a miss).

An entry is the vendor's answer in the canonical format - one completion's JSON, or a stream's chunk
payloads - with what is needed to account for a hit: when it was made, the route that made it and what it
cost. Keys are ``<project tag><namespace tag><model tag><digest>`` (8 + 8 + 8 + 32 hex characters), so a
delete by project, namespace or model is a pattern on fixed positions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError

from interlock.cache.key import short
from interlock.cache.redis_batch import RedisBatcher

log = logging.getLogger("interlock.cache")

TAG = 8
#: A stored entry's own overhead counted against ``max_bytes`` (the dict slot, the objects, the key).
ENTRY_OVERHEAD = 400


@dataclass(frozen=True, slots=True)
class Entry:
    #: ``completion`` (``body`` is its JSON) or ``stream`` (``payloads`` are its chunks).
    kind: str
    body: bytes
    payloads: tuple[bytes, ...]
    #: Epoch seconds when the answer was made.
    created: float
    #: The route that made it (``vendor/model`` target key) and what it cost then, in pico-USD (None: unpriced).
    target: str
    cost_picousd: int | None

    def __init__(self, kind: str, body: bytes, payloads: tuple[bytes, ...], created: float, target: str,
                 cost_picousd: int | None) -> None:
        """Written out: the compiled build compiles a dataclass's own __init__, not the generated one (frozen:
        set through object.__setattr__, as the generated one does)."""
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "payloads", payloads)
        object.__setattr__(self, "created", created)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "cost_picousd", cost_picousd)

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(p) for p in self.payloads) + len(self.target)

    def encode(self) -> bytes:
        """Compressed JSON (payloads are JSON text, so they travel as strings)."""
        doc = {"k": self.kind, "b": self.body.decode(), "p": [p.decode() for p in self.payloads],
               "c": self.created, "t": self.target, "$": self.cost_picousd}
        return zlib.compress(orjson.dumps(doc), 1)

    @classmethod
    def decode(cls, blob: bytes) -> Entry | None:
        """None for anything that is not an entry this version wrote (treated as a miss)."""
        try:
            doc = orjson.loads(zlib.decompress(blob))
            return cls(str(doc["k"]), str(doc["b"]).encode(), tuple(str(p).encode() for p in doc["p"]),
                       float(doc["c"]), str(doc["t"]), None if doc["$"] is None else int(doc["$"]))
        except (zlib.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Selector:
    """Which entries a delete removes: every one, or those of a project, namespace and/or model."""

    project: str | None = None
    namespace: str | None = None
    model: str | None = None

    def tags(self) -> list[str | None]:
        return [None if v is None else short(v) for v in (self.project, self.namespace, self.model)]

    def matches(self, key: str) -> bool:
        for i, tag in enumerate(self.tags()):
            if tag is not None and key[i * TAG:(i + 1) * TAG] != tag:
                return False
        return True


#: Entries and bytes per (project tag, model tag): what a cache holds, by whom and for which model.
Census = dict[tuple[str, str], list[int]]


def _count(census: Census, key: str, size: int) -> None:
    item = census.setdefault((key[:TAG], key[2 * TAG:3 * TAG]), [0, 0])
    item[0] += 1
    item[1] += size


class Backend(Protocol):
    kind: str

    async def get(self, key: str) -> Entry | None: ...

    async def put(self, key: str, entry: Entry, ttl_s: int) -> None: ...

    def put_soon(self, key: str, entry: Entry, ttl_s: int) -> Coroutine[Any, Any, None] | None:
        """Stores ``entry`` now and returns None, or returns the store to run in the background (the response
        cache makes it a task): whichever costs the backend less on the request path."""
        ...

    async def delete(self, selector: Selector) -> int: ...

    async def size(self) -> tuple[int, int]:
        """(entries, bytes) stored."""
        ...

    async def census(self) -> Census:
        """(entries, bytes) stored per (project tag, model tag)."""
        ...


class Journal:
    """Deletes for the memory caches of every worker of one gateway: a line per delete, appended to a file in
    the state directory, which each worker reads at most once a second (on its next lookup)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        self.offset = path.stat().st_size  # a worker starts with an empty cache: older deletes are moot
        self.next_poll = 0.0

    def append(self, selector: Selector, at: float) -> None:
        line = orjson.dumps({"pid": os.getpid(), "at": at, "project": selector.project,
                             "namespace": selector.namespace, "model": selector.model}) + b"\n"
        with self.path.open("ab") as f:  # one small O_APPEND write: lines of concurrent writers never interleave
            f.write(line)

    def poll(self, now: float) -> list[tuple[Selector, float]]:
        """Deletes other workers wrote since the last poll (at most one stat a second)."""
        if now < self.next_poll:
            return []
        self.next_poll = now + 1.0
        try:
            size = self.path.stat().st_size
            if size <= self.offset:
                return []
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except OSError as exc:
            log.warning("response cache: reading the deletion journal %s failed (%s)", self.path, exc)
            return []
        self.offset += data.rfind(b"\n") + 1  # a line still being written is read next time
        out = []
        me = os.getpid()
        for line in data.splitlines():
            try:
                doc = orjson.loads(line)
                if doc["pid"] != me:
                    out.append((Selector(doc["project"], doc["namespace"], doc["model"]), float(doc["at"])))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # the unfinished tail, or a line this version does not know
        return out


class MemoryBackend:
    """Per worker: an ordered map with expiry, evicting the least recently used past ``max_bytes``."""

    kind = "memory"

    def __init__(self, max_bytes: int, clock: Callable[[], float], wall: Callable[[], float] = time.time,
                 journal: Journal | None = None) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.wall = wall
        self.journal = journal
        self._items: OrderedDict[str, tuple[Entry, float, int]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str) -> Entry | None:
        journal = self.journal
        if journal is not None:
            for selector, at in journal.poll(self.clock()):
                self._delete(selector, at)
        item = self._items.get(key)
        if item is None:
            return None
        entry, expires, _ = item
        if expires <= self.clock():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return entry

    async def put(self, key: str, entry: Entry, ttl_s: int) -> None:
        self.put_soon(key, entry, ttl_s)

    def put_soon(self, key: str, entry: Entry, ttl_s: int) -> None:
        """Stored now: a few dict operations, cheaper than the task a background store would take."""
        size = entry.size + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (entry, self.clock() + ttl_s, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    async def delete(self, selector: Selector) -> int:
        at = self.wall()
        if self.journal is not None:
            self.journal.append(selector, at)
        return self._delete(selector, at)

    def _delete(self, selector: Selector, at: float) -> int:
        """Entries ``selector`` matches that were made before ``at`` (a later answer is not what was deleted)."""
        doomed = [k for k, (entry, _, _) in self._items.items() if entry.created <= at and selector.matches(k)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def size(self) -> tuple[int, int]:
        return len(self._items), self.bytes

    async def census(self) -> Census:
        """Live entries and their bytes (as counted against ``max_bytes``) per project and model tag."""
        out: Census = {}
        now = self.clock()
        for key, (_, expires, size) in self._items.items():
            if expires > now:
                _count(out, key, size)
        return out

    def _drop(self, key: str) -> None:
        _, _, size = self._items.pop(key)
        self.bytes -= size


class RedisBackend:
    """Shared: a lookup and a store each bounded by ``timeout_s`` and sent with the others of the same loop
    iteration (``redis_batch.py``: one MGET, one pipeline); any failure is a miss, logged once a minute at
    most."""

    kind = "redis"

    def __init__(self, client: Any, prefix: str, timeout_s: float, clock: Callable[[], float]) -> None:
        self.client = client
        self.batch = RedisBatcher(client)
        self.prefix = prefix + "cache:"
        self.timeout_s = timeout_s
        self.clock = clock
        self._warned = -1e9
        #: Failures since start (lookups and stores that fell back to a miss), for the metrics.
        self.failures = 0

    async def get(self, key: str) -> Entry | None:
        try:
            async with asyncio.timeout(self.timeout_s):  # cheaper than wait_for: no task per call
                blob = await self.batch.get(self.prefix + key)
        except (RedisError, OSError, TimeoutError) as exc:  # a miss, never an error
            self._failed("lookup", exc)
            return None
        return Entry.decode(blob) if blob is not None else None

    async def put(self, key: str, entry: Entry, ttl_s: int) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.batch.set(self.prefix + key, entry.encode(), ttl_s)
        except (RedisError, OSError, TimeoutError) as exc:  # the cache is left without the entry
            self._failed("store", exc)

    def put_soon(self, key: str, entry: Entry, ttl_s: int) -> Coroutine[Any, Any, None]:
        """A network round trip (batched with the loop iteration's others): run in the background."""
        return self.put(key, entry, ttl_s)

    async def delete(self, selector: Selector) -> int:
        """SCAN for the selector's pattern and delete in batches (an admin operation, not on the request path)."""
        pattern = self.prefix + "".join(tag if tag is not None else "?" * TAG for tag in selector.tags()) + "*"
        removed = 0
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                removed += int(await self.client.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(await self.client.unlink(*batch))
        return removed

    async def size(self) -> tuple[int, int]:
        """Entries and bytes under the prefix (a SCAN: for the admin API, not the request path)."""
        counted = (await self.census()).values()
        return sum(c[0] for c in counted), sum(c[1] for c in counted)

    async def census(self) -> Census:
        """Entries and stored (compressed) bytes per project and model tag: a SCAN, each batch of keys' sizes
        read in one pipeline (an admin operation, not the request path)."""
        out: Census = {}
        skip = len(self.prefix)
        batch: list[bytes] = []

        async def sizes() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key in batch:
                pipe.strlen(key)
            for key, size in zip(batch, await pipe.execute(), strict=True):
                if size:  # expired between the SCAN and the read: gone
                    _count(out, key.decode()[skip:], int(size))
            batch.clear()

        async for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await sizes()
        if batch:
            await sizes()
        return out

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        now = self.clock()
        if now - self._warned >= 60.0:
            self._warned = now
            log.warning("response cache: Redis %s failed (%s: %s); answering as a miss",
                        what, type(exc).__name__, exc)
