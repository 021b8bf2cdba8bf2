"""A cloud credential fetched in a worker thread and cached until shortly before it expires.

botocore's credential chain and google-auth's application default credentials
fetch with blocking calls (files, STS, an OAuth token endpoint, the metadata
server), so they never run on the event loop. :class:`CachedCredential` answers
from its cache; when less than ``refresh_before`` seconds remain it starts one
background refresh in a thread and keeps serving the current value, and only a
value about to expire (or none yet) makes requests wait - all of them on the
same single fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: A fetch answers the value and when it expires (epoch seconds; None: never).
Fetch = Callable[[], tuple[T, float | None]]


class CachedCredential(Generic[T]):
    """``await get()``: the cached value, fetched by ``fetch`` in a thread when needed, one fetch at a time."""

    def __init__(self, fetch: Fetch[T], *, refresh_before: float, min_valid: float = 60.0,
                 retry_every: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self._refresh_before = refresh_before
        self._min_valid = min_valid
        self._retry_every = retry_every
        self._clock = clock
        self._value: T | None = None
        self._expires_at: float | None = None
        self._next_background = 0.0
        self._pending: asyncio.Task[None] | None = None
        #: Completed fetches (for tests and diagnostics).
        self.exchanges = 0

    async def get(self) -> T:
        value = self._value
        if value is not None:
            if self._expires_at is None:
                return value
            now = self._clock()
            remaining = self._expires_at - now
            if remaining > self._min_valid:
                if remaining < self._refresh_before and self._pending is None and now >= self._next_background:
                    self._start()
                return value
        pending = self._pending or self._start()
        await asyncio.shield(pending)
        assert self._value is not None
        return self._value

    def _start(self) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._refresh())
        task.add_done_callback(self._refreshed)
        self._pending = task
        return task

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._pending = None
        if not task.cancelled():
            # Retrieved so a failed *background* refresh is not reported as unhandled: the current
            # value stays in use and a refresh is tried again later. A waiting request gets the error.
            task.exception()

    async def _refresh(self) -> None:
        try:
            value, expires_at = await asyncio.to_thread(self._fetch)
        finally:
            self._next_background = self._clock() + self._retry_every
        self._value, self._expires_at = value, expires_at
        self.exchanges += 1
