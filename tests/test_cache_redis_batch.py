"""The Redis batcher under load and under failure: lookups of one loop iteration share one MGET, stores one
pipeline; a failed, slow or hung Redis is a miss for every caller and never an error or a leaked future."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from interlock.cache.redis_batch import MAX_BATCH, RedisBatcher
from interlock.cache.response_cache import ResponseCache
from interlock.cache.settings import CacheSettings
from interlock.cache.store import RedisBackend
from tests.fake_clock import FakeClock
from tests.test_cache_store import entry, key


class Spy:
    """Wraps a real client, counting the commands the batcher sends."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.mgets: list[int] = []
        self.pipelines: list[int] = []

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        self.mgets.append(len(keys))
        return list(await self.client.mget(keys))

    def pipeline(self, transaction: bool = True) -> Any:
        pipe = self.client.pipeline(transaction=transaction)
        execute = pipe.execute

        async def counted() -> Any:
            self.pipelines.append(len(pipe.command_stack))
            return await execute()
        pipe.execute = counted
        return pipe


class Failing:
    """A client whose commands fail after ``delay`` seconds (or hang, with a long delay)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        raise RedisConnectionError("Connection reset by peer")


async def test_lookups_of_one_iteration_share_one_mget(redis_prefix: tuple[redis_asyncio.Redis, str]) -> None:
    client, prefix = redis_prefix
    spy = Spy(client)
    backend = RedisBackend(spy, prefix, 1.0, FakeClock().monotonic)
    stored = [key(digest=f"{i:032x}") for i in range(0, 300, 2)]
    await asyncio.gather(*(backend.put(k, entry(body=k.encode()), 60) for k in stored))
    assert spy.pipelines == [MAX_BATCH, len(stored) - MAX_BATCH]  # 150 stores: two pipelines, one iteration
    wanted = [key(digest=f"{i:032x}") for i in range(300)]
    found = await asyncio.gather(*(backend.get(k) for k in wanted))
    # Present and absent keys each get their own answer, in order; 300 lookups: three MGETs.
    assert [f.body.decode() if f is not None else None for f in found] == \
        [k if i % 2 == 0 else None for i, k in enumerate(wanted)]
    assert spy.mgets == [MAX_BATCH, MAX_BATCH, 300 - 2 * MAX_BATCH]
    assert backend.failures == 0


async def test_one_lookup_at_a_time_is_one_key_per_mget(redis_prefix: tuple[redis_asyncio.Redis, str]) -> None:
    client, prefix = redis_prefix
    spy = Spy(client)
    backend = RedisBackend(spy, prefix, 1.0, FakeClock().monotonic)
    await backend.put(key(), entry(), 60)
    for _ in range(3):
        assert await backend.get(key()) == entry()
    assert spy.mgets == [1, 1, 1]
    assert 0 < await client.ttl(prefix + "cache:" + key()) <= 60


async def test_a_failed_batch_is_a_miss_for_every_caller() -> None:
    failing = Failing()
    backend = RedisBackend(failing, "x:", 1.0, FakeClock().monotonic)
    found = await asyncio.gather(*(backend.get(key(digest=f"{i:032x}")) for i in range(50)))
    assert found == [None] * 50
    assert failing.calls == 1 and backend.failures == 50


async def test_a_hung_redis_times_out_each_caller_and_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    hung = Failing(delay=30.0)
    backend = RedisBackend(hung, "x:", 0.05, FakeClock().monotonic)
    loop = asyncio.get_running_loop()
    start = loop.time()
    found = await asyncio.gather(*(backend.get(key(digest=f"{i:032x}")) for i in range(20)))
    assert found == [None] * 20 and loop.time() - start < 1.0
    assert backend.failures == 20
    # The batch itself is still waiting on the hung server: cancelling it (shutdown) fails nobody else and
    # leaves no "exception was never retrieved" behind.
    tasks = list(backend.batch._tasks)
    assert len(tasks) == 1
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


async def test_a_caller_that_leaves_does_not_disturb_the_others(redis_prefix: tuple[redis_asyncio.Redis, str]) -> None:
    client, prefix = redis_prefix
    backend = RedisBackend(client, prefix, 1.0, FakeClock().monotonic)
    await backend.put(key(), entry(), 60)
    leaving = asyncio.ensure_future(backend.get(key()))
    staying = asyncio.ensure_future(backend.get(key()))
    await asyncio.sleep(0)  # both queued in one batch
    leaving.cancel()
    assert await staying == entry()
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_refused_connection_is_a_miss_and_stores_are_dropped() -> None:
    dead = redis_asyncio.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    backend = RedisBackend(dead, "x:", 0.5, FakeClock().monotonic)
    assert await asyncio.gather(*(backend.get(key(digest=f"{i:032x}")) for i in range(5))) == [None] * 5
    await asyncio.gather(*(backend.put(key(digest=f"{i:032x}"), entry(), 60) for i in range(5)))
    assert backend.failures == 10
    await dead.aclose()


async def test_stores_of_one_iteration_are_sent_together(redis_prefix: tuple[redis_asyncio.Redis, str]) -> None:
    client, prefix = redis_prefix
    spy = Spy(client)
    batcher = RedisBatcher(spy)
    await asyncio.gather(*(batcher.set(f"{prefix}k{i}", b"v", 60) for i in range(5)))
    assert spy.pipelines == [5]
    assert await client.get(f"{prefix}k4") == b"v" and 0 < await client.ttl(f"{prefix}k4") <= 60


async def test_close_sends_the_stores_still_queued(redis_prefix: tuple[redis_asyncio.Redis, str]) -> None:
    """The gateway's shutdown awaits ResponseCache.close: an answer stored in the last moment reaches Redis."""
    client, prefix = redis_prefix
    backend = RedisBackend(client, prefix, 1.0, FakeClock().monotonic)
    cache = ResponseCache(CacheSettings(), backend, lambda: 1000.0)
    cache.store(key(), entry(), 60)
    # Queued, checked without yielding to the loop: any await here (a Redis read, say) lets the store run
    # before close() and the test would prove nothing (or, checking Redis, fail when the batch wins).
    assert len(cache._tasks) == 1 and not cache._tasks.copy().pop().done()
    await cache.close()
    assert await backend.get(key()) == entry()
