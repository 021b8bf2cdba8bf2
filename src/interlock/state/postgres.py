"""Opening PostgreSQL (``store: postgresql://...``), in one place: an asyncpg pool opened on first use.

The first caller opens the pool and brings the schemas it was given up to date
(``migrations.migrate_postgres``) before anyone uses it; callers arriving
meanwhile wait for that one pool. An asyncpg pool belongs to the event loop
that opened it: with ``per_loop`` a pool opened in another loop (the gateway
loads governance definitions in a short-lived loop before serving) is dropped
and a new one opened where it is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from interlock.state.migrations import Schema, migrate_postgres


async def _keep_session(conn: Any) -> None:
    """Released connections are not reset: for users that never change session state (a reset is a round trip)."""


class PgPool:
    def __init__(self, url: str, schemas: Sequence[Schema], *, min_size: int = 1, max_size: int = 4,
                 timeout: float = 5.0, command_timeout: float = 30.0, keep_session: bool = False,
                 per_loop: bool = False) -> None:
        self.url = url
        self.schemas = tuple(schemas)
        self._options: dict[str, Any] = {"min_size": min_size, "max_size": max_size, "timeout": timeout,
                                         "command_timeout": command_timeout}
        if keep_session:
            self._options["reset"] = _keep_session
        self._per_loop = per_loop
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def get(self) -> Any:
        """The pool (an ``asyncpg.Pool``), opened and the schemas migrated on first use."""
        pool = self._pool
        if pool is not None and (not self._per_loop or self._loop is asyncio.get_running_loop()):
            return pool
        async with self._lock():  # concurrent first calls share one pool
            return await self._open()

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        return self._opening[1]

    async def _open(self) -> Any:
        # Imported here: asyncpg only for a PostgreSQL store.
        import asyncpg

        loop = asyncio.get_running_loop()
        if self._pool is not None:
            if not self._per_loop or self._loop is loop:
                return self._pool
            stale, self._pool = self._pool, None
            stale.terminate()
        pool = await asyncpg.create_pool(self.url, **self._options)
        try:
            async with pool.acquire() as conn:
                await migrate_postgres(conn, self.schemas)
        except BaseException:
            pool.terminate()
            raise
        self._pool, self._loop = pool, loop
        return pool

    async def close(self) -> None:
        """Close the pool: gracefully from its own loop, at once from any other."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        if self._loop is asyncio.get_running_loop():
            await pool.close()
        else:
            pool.terminate()
