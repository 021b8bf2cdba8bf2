"""A clock that tests move by hand (interlock.core.clock.Clock), so window and expiry tests never sleep."""

from __future__ import annotations

import asyncio
import time


class FakeClock:
    """Wall time starts in the middle of the current real UTC minute (same day, same period keys as the
    real clock), so a test counting in minute windows is never cut by a boundary; ``advance`` moves it.
    ``sleep`` waits until the clock is advanced past its end, as a real sleep waits for real time."""

    def __init__(self, start: float | None = None) -> None:
        if start is None:
            real = time.time()
            start = real - real % 60 + 30
        self.now = start
        self.mono = 1_000.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.mono + max(seconds, 0.0), future))
        await future

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds
        due = [f for end, f in self._sleepers if end <= self.mono]
        self._sleepers = [(end, f) for end, f in self._sleepers if end > self.mono]
        for future in due:
            if not future.done():
                future.set_result(None)
