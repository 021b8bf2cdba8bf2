"""Per client address limits of the console's public endpoints (this process; not shared through Redis)."""

from __future__ import annotations

from collections import deque

from interlock.core.clock import SYSTEM_CLOCK, Clock


class AddressLimiter:
    """At most ``limit`` events per client address within ``window`` seconds: failed sign-ins, simulator runs."""

    def __init__(self, limit: int, window: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        times = self._events.get(client)
        if times is None:
            return deque()
        cutoff = self.clock.monotonic() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until another event is allowed, or None when one is allowed now."""
        times = self._recent(client)
        if len(times) < self.limit:
            return None
        return max(1, int(times[0] + self.window - self.clock.monotonic()) + 1)

    def add(self, client: str) -> None:
        if len(self._events) >= 10_000:
            self._events.clear()  # bounded memory under a spray of addresses
        self._events.setdefault(client, deque()).append(self.clock.monotonic())
