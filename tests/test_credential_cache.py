"""CachedCredential: fetched in a thread, one fetch at a time, served from the cache until shortly before expiry."""

from __future__ import annotations

import asyncio
import threading

import pytest

from interlock.core.errors import UpstreamError
from interlock.vendors.credential_cache import CachedCredential


class Fetcher:
    """Issues ``v1``, ``v2``, ... each valid for ``lifetime`` seconds; blocks until released when ``gate`` is set."""

    def __init__(self, now: list[float], lifetime: float | None = 3600.0) -> None:
        self.now = now
        self.lifetime = lifetime
        self.calls = 0
        self.threads: set[int] = set()
        self.gate: threading.Event | None = None
        self.fail: str | None = None

    def __call__(self) -> tuple[str, float | None]:
        self.threads.add(threading.get_ident())
        if self.gate is not None:
            self.gate.wait(5)
        self.calls += 1
        if self.fail:
            raise UpstreamError(self.fail, code="upstream_auth_error")
        return f"v{self.calls}", None if self.lifetime is None else self.now[0] + self.lifetime


async def test_concurrent_first_requests_share_one_fetch_off_the_loop() -> None:
    now = [1000.0]
    fetch = Fetcher(now)
    fetch.gate = threading.Event()
    cache = CachedCredential(fetch, refresh_before=600, clock=lambda: now[0])
    waiters = [asyncio.ensure_future(cache.get()) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)  # the loop is free while the fetch blocks its thread
    fetch.gate.set()
    assert await asyncio.gather(*waiters) == ["v1"] * 5
    assert fetch.calls == 1 and threading.get_ident() not in fetch.threads


async def test_never_expiring_values_are_fetched_once() -> None:
    now = [0.0]
    fetch = Fetcher(now, lifetime=None)
    cache = CachedCredential(fetch, refresh_before=600, clock=lambda: now[0])
    assert await cache.get() == "v1"
    now[0] += 10**9
    assert await cache.get() == "v1" and fetch.calls == 1


async def test_background_refresh_keeps_serving_and_a_failure_keeps_the_old_value() -> None:
    now = [0.0]
    fetch = Fetcher(now)
    cache = CachedCredential(fetch, refresh_before=600, retry_every=30, clock=lambda: now[0])
    assert await cache.get() == "v1"
    now[0] = 3600 - 300
    fetch.fail = "token endpoint down"
    assert await cache.get() == "v1"  # served; a refresh starts behind it and fails
    for _ in range(100):
        if fetch.calls == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    assert await cache.get() == "v1" and fetch.calls == 2  # no retry before retry_every
    now[0] += 31
    fetch.fail = None
    assert await cache.get() == "v1"
    for _ in range(100):
        if cache.exchanges == 2:
            break
        await asyncio.sleep(0.01)
    assert await cache.get() == "v3"


async def test_an_expired_value_waits_and_the_error_reaches_the_waiters() -> None:
    now = [0.0]
    fetch = Fetcher(now)
    cache = CachedCredential(fetch, refresh_before=600, clock=lambda: now[0])
    assert await cache.get() == "v1"
    now[0] = 3600 - 30  # under a minute left: not served any more
    fetch.fail = "refused"
    with pytest.raises(UpstreamError, match="refused"):
        await cache.get()
    fetch.fail = None
    assert await cache.get() == "v3"
