"""The response cache's backends: memory (bytes bound, LRU, expiry, deletes and their journal across
workers) and Redis (shared, compressed, a delete by pattern, an outage is a miss)."""

from __future__ import annotations

import os
from pathlib import Path

import redis.asyncio as redis_asyncio

from interlock.cache.key import short
from interlock.cache.store import ENTRY_OVERHEAD, Entry, Journal, MemoryBackend, RedisBackend, Selector
from tests.fake_clock import FakeClock

REDIS_URL = "redis://127.0.0.1:6379/0"


def entry(body: bytes = b'{"id": "x"}', created: float = 1000.0, payloads: tuple[bytes, ...] = ()) -> Entry:
    return Entry("completion" if not payloads else "stream", body, payloads, created, "mock/m", 1234)


def key(project: str = "p", namespace: str = "", model: str = "m", digest: str = "0" * 32) -> str:
    return short(project) + short(namespace) + short(model) + digest


async def test_memory_expires_and_evicts_the_least_recently_used() -> None:
    clock = FakeClock()
    size = entry(b"x" * 1000).size + ENTRY_OVERHEAD
    mem = MemoryBackend(3 * size, clock.monotonic, clock.time)
    for i in range(3):
        await mem.put(key(digest=f"{i:032d}"), entry(b"x" * 1000), 60)
    assert await mem.get(key(digest=f"{0:032d}")) is not None  # 0 is now the most recently used
    await mem.put(key(digest=f"{3:032d}"), entry(b"x" * 1000), 60)
    assert await mem.get(key(digest=f"{1:032d}")) is None  # the least recently used left
    assert await mem.get(key(digest=f"{0:032d}")) is not None
    assert len(mem) == 3 and mem.bytes == 3 * size
    clock.advance(61)
    assert await mem.get(key(digest=f"{0:032d}")) is None
    await mem.put(key(), entry(b"y" * 10 * size), 60)  # larger than the whole cache: not stored
    assert await mem.get(key()) is None


async def test_memory_delete_by_selector() -> None:
    clock = FakeClock()
    mem = MemoryBackend(1 << 20, clock.monotonic, clock.time)
    await mem.put(key("a", "", "m1", "1" * 32), entry(created=clock.time()), 60)
    await mem.put(key("a", "alice", "m2", "2" * 32), entry(created=clock.time()), 60)
    await mem.put(key("b", "", "m1", "3" * 32), entry(created=clock.time()), 60)
    assert await mem.delete(Selector(model="m1", project="b")) == 1
    assert await mem.delete(Selector(namespace="alice")) == 1
    assert await mem.delete(Selector()) == 1
    assert len(mem) == 0 and mem.bytes == 0


async def test_the_journal_carries_deletes_to_other_workers(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "cache-deletions.jsonl"
    one = MemoryBackend(1 << 20, clock.monotonic, clock.time, Journal(path))
    two = MemoryBackend(1 << 20, clock.monotonic, clock.time, Journal(path))
    for mem in (one, two):
        await mem.put(key("a"), entry(created=clock.time() - 5), 600)
        await mem.put(key("b"), entry(created=clock.time() - 5), 600)
    assert await one.delete(Selector(project="a")) == 1
    assert path.read_bytes().count(b"\n") == 1
    # The other worker: a line from another process id (this test is one process, so it writes as one).
    line = path.read_bytes().replace(f'"pid":{os.getpid()}'.encode(), b'"pid":1')
    path.write_bytes(line)
    clock.advance(2)
    assert await two.get(key("a")) is None and await two.get(key("b")) is not None
    # An answer stored after the delete is not what the delete removed.
    await two.put(key("a"), entry(created=clock.time() + 1), 600)
    with path.open("ab") as f:
        f.write(line)
    clock.advance(2)
    assert await two.get(key("a")) is not None
    with path.open("ab") as f:  # a line still being written is left for the next poll
        f.write(b'{"pid":1,"at":')
    clock.advance(2)
    assert await two.get(key("b")) is not None


def test_entries_round_trip_compressed() -> None:
    e = entry(b'{"choices": []}' * 50, payloads=(b'{"a":1}', "é€".encode()))
    blob = e.encode()
    assert len(blob) < e.size
    assert Entry.decode(blob) == e
    assert Entry.decode(b"not zlib") is None and Entry.decode(e.encode()[:-3]) is None


async def test_redis_is_shared_and_deletes_by_pattern(redis_prefix: tuple[redis_asyncio.Redis, str]) -> None:
    client, prefix = redis_prefix
    clock = FakeClock()
    a = RedisBackend(client, prefix, 1.0, clock.monotonic)
    b = RedisBackend(redis_asyncio.Redis.from_url(REDIS_URL), prefix, 1.0, clock.monotonic)
    await a.put(key("p1", "", "m1", "1" * 32), entry(), 60)
    await a.put(key("p1", "", "m2", "2" * 32), entry(), 60)
    await a.put(key("p2", "", "m1", "3" * 32), entry(), 60)
    assert await b.get(key("p1", "", "m1", "1" * 32)) == entry()
    assert 0 < await client.ttl(prefix + "cache:" + key("p1", "", "m1", "1" * 32)) <= 60
    assert (await b.size())[0] == 3
    assert await b.delete(Selector(model="m1")) == 2
    assert await a.get(key("p2", "", "m1", "3" * 32)) is None
    assert await a.get(key("p1", "", "m2", "2" * 32)) is not None
    await b.client.aclose()


async def test_redis_outage_is_a_miss() -> None:
    clock = FakeClock()
    # A port nothing listens on: connection refused, at once.
    dead = redis_asyncio.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    backend = RedisBackend(dead, "x:", 0.5, clock.monotonic)
    assert await backend.get(key()) is None
    await backend.put(key(), entry(), 60)  # no exception
    assert backend.failures == 2
    await dead.aclose()


async def test_census_counts_entries_and_bytes_per_project_and_model(
        redis_prefix: tuple[redis_asyncio.Redis, str]) -> None:
    client, prefix = redis_prefix
    clock = FakeClock()
    mem = MemoryBackend(1 << 20, clock.monotonic, clock.time)
    red = RedisBackend(client, prefix, 1.0, clock.monotonic)
    puts = [(key("a", "", "m1", "1" * 32), entry(b"x" * 100)), (key("a", "ns", "m1", "2" * 32), entry(b"y" * 300)),
            (key("a", "", "m2", "3" * 32), entry()), (key("b", "", "m1", "4" * 32), entry(b"z" * 50))]
    for k, e in puts:
        await mem.put(k, e, 60)
        await red.put(k, e, 60)
    # 600 more in Redis: the census reads sizes a batch of keys at a time.
    for i in range(600):
        await red.put(key("c", "", "m3", f"{i:032d}"), entry(), 60)
    for backend, size in ((mem, lambda e: e.size + ENTRY_OVERHEAD), (red, lambda e: len(e.encode()))):
        census = await backend.census()
        assert census[(short("a"), short("m1"))] == [2, size(puts[0][1]) + size(puts[1][1])]
        assert census[(short("a"), short("m2"))] == [1, size(puts[2][1])]
        assert census[(short("b"), short("m1"))] == [1, size(puts[3][1])]
        assert (sum(c[0] for c in census.values()), sum(c[1] for c in census.values())) == await backend.size()
        assert sum(c[0] for c in census.values()) == (4 if backend is mem else 604)
    assert (await red.census())[(short("c"), short("m3"))][0] == 600
    clock.advance(61)
    assert await mem.census() == {}  # expired entries are not held


async def test_the_census_is_named_from_the_names_given() -> None:
    from interlock.cache.response_cache import SHARED, ResponseCache
    from interlock.cache.settings import CacheSettings

    clock = FakeClock()
    mem = MemoryBackend(1 << 20, clock.monotonic, clock.time)
    cache = ResponseCache(CacheSettings(), mem, clock.time)
    for i, (project, model) in enumerate((("acme", "m1"), ("acme", "m2"), ("", "m1"), (SHARED, "m1"),
                                          ("ghost", "m9"))):
        await mem.put(key(project, "", model, f"{i:032d}"), entry(), 60)
    size = entry().size + ENTRY_OVERHEAD
    projects, models = await cache.census(["acme", "beta"], ["m1", "m2"])
    assert projects == {"acme": [2, 2 * size], "": [1, size], "*": [1, size], "#" + short("ghost"): [1, size]}
    assert models == {"m1": [3, 3 * size], "m2": [1, size], "#" + short("m9"): [1, size]}
    projects, models = await cache.census(["acme"], ["m1", "m2"], only="acme")
    assert projects == {"acme": [2, 2 * size]} and models == {"m1": [1, size], "m2": [1, size]}
    assert await cache.census([], [], only="beta") == ({}, {})


async def test_a_memory_store_is_made_at_once_without_a_task() -> None:
    """The response cache stores into the memory backend synchronously: the answer is there before the next
    request (no task per answer, the miss path's dearest part). A shared backend's store stays a task
    (test_cache_redis_batch.py's close test)."""
    from interlock.cache.response_cache import ResponseCache
    from interlock.cache.settings import CacheSettings

    clock = FakeClock()
    backend = MemoryBackend(1 << 20, clock.monotonic, clock.time)
    cache = ResponseCache(CacheSettings(), backend, clock.time)
    cache.store(key(), entry(), 60)
    assert not cache._tasks and len(backend) == 1 and cache.counts.stores == 1
    assert await backend.get(key()) == entry()
