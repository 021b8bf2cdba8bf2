"""Circuit breakers, one per target (``vendor/vendor_model``), per process.

A vendor that fails most requests should stop receiving traffic at once -
every request sent to it costs the caller a failed attempt's latency - and
should get it back as soon as it recovers. The breaker opens when the failure
rate over a sliding window crosses a threshold (with a minimum of requests,
so two unlucky requests do not open it), stays open for a cooldown, then lets
exactly one real request through as a probe (half-open): its success closes
the circuit, its failure re-opens it with a doubled cooldown.

The clock is injectable so tests and the chaos experiment run in compressed
time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    #: Failure share over the window that opens the circuit.
    failure_rate: float = 0.5
    #: Requests needed in the window before the rate is trusted.
    min_requests: int = 10
    window_s: float = 30.0
    cooldown_s: float = 5.0
    max_cooldown_s: float = 60.0
    #: Sliding window resolution.
    buckets: int = 10


class Breaker:
    """The sliding window is a ring of per-slice (ok, failed) counters: O(1) per outcome."""

    __slots__ = ("_cooldown", "_fail", "_ok", "_slice", "_slice_s", "opened_at", "probe_in_flight", "reopen_at",
                 "settings", "state")

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self.state = CLOSED
        n = settings.buckets
        self._ok = [0] * n
        self._fail = [0] * n
        self._slice_s = settings.window_s / n
        self._slice = 0
        self._cooldown = settings.cooldown_s
        self.opened_at = 0.0
        self.reopen_at = 0.0
        self.probe_in_flight = False

    def _advance(self, now: float) -> int:
        current = int(now / self._slice_s)
        n = self.settings.buckets
        gap = current - self._slice
        if gap > 0:
            for i in range(1, min(gap, n) + 1):
                idx = (self._slice + i) % n
                self._ok[idx] = 0
                self._fail[idx] = 0
            self._slice = current
        return current % n

    def counts(self, now: float) -> tuple[int, int]:
        self._advance(now)
        return sum(self._ok), sum(self._fail)

    def available(self, now: float) -> bool:
        """May a request be routed here? (Open circuits become probe-able after the cooldown.)"""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return now >= self.reopen_at
        return not self.probe_in_flight

    def acquire(self, now: float) -> bool:
        """Claim the right to send one request now; in half-open state only one probe at a time."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if now < self.reopen_at:
                return False
            self.state = HALF_OPEN
            self.probe_in_flight = False
        if self.probe_in_flight:
            return False
        self.probe_in_flight = True
        return True

    def record(self, ok: bool, now: float) -> None:
        idx = self._advance(now)
        if self.state == HALF_OPEN:
            self.probe_in_flight = False
            if ok:
                self._close()
            else:
                self._open(now, backoff=True)
            return
        if ok:
            self._ok[idx] += 1
            return
        self._fail[idx] += 1
        if self.state == CLOSED:
            ok_n, fail_n = sum(self._ok), sum(self._fail)
            total = ok_n + fail_n
            if total >= self.settings.min_requests and fail_n / total >= self.settings.failure_rate:
                self._open(now, backoff=False)

    def release(self) -> None:
        """A claimed probe ended without a verdict on the vendor (e.g. the client's own error)."""
        if self.state == HALF_OPEN:
            self.probe_in_flight = False

    def _open(self, now: float, *, backoff: bool) -> None:
        if backoff:
            self._cooldown = min(self._cooldown * 2, self.settings.max_cooldown_s)
        self.state = OPEN
        self.opened_at = now
        self.reopen_at = now + self._cooldown

    def _close(self) -> None:
        self.state = CLOSED
        self._cooldown = self.settings.cooldown_s
        for i in range(self.settings.buckets):
            self._ok[i] = 0
            self._fail[i] = 0


class Circuits:
    """Every target's breaker, created on first use."""

    def __init__(self, settings: BreakerSettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or BreakerSettings()
        self.clock = clock
        self._breakers: dict[str, Breaker] = {}

    def get(self, key: str) -> Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = Breaker(self.settings)
        return breaker

    def active(self) -> bool:
        """Has any breaker ever been created (any attempt recorded)? Lets routing skip lookups."""
        return bool(self._breakers)

    def available(self, key: str) -> bool:
        breaker = self._breakers.get(key)
        return breaker is None or breaker.available(self.clock())

    def state(self, key: str) -> str:
        breaker = self._breakers.get(key)
        return CLOSED if breaker is None else breaker.state

    def acquire(self, key: str) -> bool:
        breaker = self._breakers.get(key)
        return breaker is None or breaker.acquire(self.clock())

    def record(self, key: str, ok: bool) -> None:
        self.get(key).record(ok, self.clock())

    def release(self, key: str) -> None:
        breaker = self._breakers.get(key)
        if breaker is not None:
            breaker.release()

    def retry_in(self, key: str) -> float:
        breaker = self._breakers.get(key)
        if breaker is None or breaker.state != OPEN:
            return 0.0
        return max(0.0, breaker.reopen_at - self.clock())
