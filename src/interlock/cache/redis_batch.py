"""Coalesces the response cache's Redis commands: one MGET for the lookups, one pipeline for the stores.

redis-py's asyncio client spends about 110-150 µs of the worker's CPU on each command (pool, connection
lock, parser, timeouts), more than the rest of a cache hit; an MGET of 32 keys costs about 15 µs a key
(``bench/cache.py`` measures the gateway with and without). So lookups and stores are queued and sent
once per event-loop iteration: every request that reaches the cache in the same iteration shares one
round trip. With one request at a time a batch holds one key and nothing waits longer than before (the
flush is the next callback the loop runs).

Failure semantics are the backend's: a batch that fails fails each of its callers' futures with the error
(the backend turns it into a miss); a caller that stops waiting (its timeout, or a client gone) leaves the
batch to finish without it.
"""

from __future__ import annotations

import asyncio
from typing import Any

#: Keys per MGET and entries per pipeline; a larger queue is sent as several batches in the same iteration.
MAX_BATCH = 128


class RedisBatcher:
    __slots__ = ("_client", "_gets", "_sets", "_tasks")

    def __init__(self, client: Any) -> None:
        self._client = client
        self._gets: list[tuple[str, asyncio.Future[bytes | None]]] = []
        self._sets: list[tuple[str, bytes, int, asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, key: str) -> asyncio.Future[bytes | None]:
        """The value of ``key`` (None when absent), fetched with the other lookups of this loop iteration."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        if not self._gets:
            loop.call_soon(self._send_gets)
        self._gets.append((key, future))
        return future

    def set(self, key: str, value: bytes, ttl_s: int) -> asyncio.Future[None]:
        """Stores ``value`` for ``ttl_s`` seconds, with the other stores of this loop iteration."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._sets:
            loop.call_soon(self._send_sets)
        self._sets.append((key, value, ttl_s, future))
        return future

    def _send_gets(self) -> None:
        queued, self._gets = self._gets, []
        for start in range(0, len(queued), MAX_BATCH):
            self._spawn(self._mget(queued[start:start + MAX_BATCH]))

    def _send_sets(self) -> None:
        queued, self._sets = self._sets, []
        for start in range(0, len(queued), MAX_BATCH):
            self._spawn(self._pipeline(queued[start:start + MAX_BATCH]))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # a reference until it is done (the loop keeps only a weak one)
        task.add_done_callback(self._tasks.discard)

    async def _mget(self, batch: list[tuple[str, asyncio.Future[bytes | None]]]) -> None:
        live = [(k, f) for k, f in batch if not f.done()]
        if not live:
            return
        try:
            values = await self._client.mget([k for k, _ in live])
        except BaseException as exc:  # handed to every caller (the backend makes it a miss)
            _fail(live, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), value in zip(live, values, strict=True):
            if not future.done():
                future.set_result(value)

    async def _pipeline(self, batch: list[tuple[str, bytes, int, asyncio.Future[None]]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, value, ttl_s, _ in batch:
            pipe.set(key, value, ex=ttl_s)
        try:
            await pipe.execute()
        except BaseException as exc:  # handed to every caller
            _fail([(k, f) for k, _, _, f in batch], exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for *_, future in batch:
            if not future.done():
                future.set_result(None)


def _fail(batch: list[tuple[str, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
