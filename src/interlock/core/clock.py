"""Time as a dependency: wall time, monotonic time and sleep behind one small interface.

Components that count in time windows (governance's minute windows and budget periods, key expiry,
the retry of failed settles) take a :class:`Clock` instead of calling :mod:`time`, so tests can put
them in any minute and move time on without sleeping.
"""

from __future__ import annotations

import asyncio
import time as _time
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
    """The real clock. ``time`` and ``monotonic`` are the C functions themselves: a component that keeps
    ``clock.monotonic`` calls :func:`time.monotonic` with no Python frame in between (circuit breakers
    read it on every request)."""

    __slots__ = ()

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
