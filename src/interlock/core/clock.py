"""Time as a dependency: wall time, monotonic time and sleep behind one small interface.

Components that count in time windows (governance's minute windows and budget periods, key expiry,
the retry of failed settles) take a :class:`Clock` instead of calling :mod:`time`, so tests can put
them in any minute and move time on without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (windows, periods, expiry)."""
        ...

    def monotonic(self) -> float:
        """Seconds for intervals; never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
