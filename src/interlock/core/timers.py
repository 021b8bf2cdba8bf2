"""Deadlines for the hot path: one ticking timer per event loop instead of one timer per request.

``asyncio.timeout`` arms a loop timer on entry and disarms it on exit: a few
microseconds each time, and a request through the gateway needs a routing
deadline and a vendor deadline. :class:`Expiry` does the same job against a
:class:`TimerWheel`: entering drops the expiry into a 10 ms slot (a dict and a
set insert), leaving removes it, and one loop timer walks the due slots while
anything is armed. A deadline fires at most one tick late, which is noise
next to vendor timeouts counted in seconds.

Moving a deadline later (the idle timer of a stream, pushed on every chunk)
only updates a float: the slot it sits in checks the new time when it comes
due and re-files it. Expiry semantics follow ``asyncio.timeout``: the task is
cancelled, and the ``CancelledError`` becomes :class:`TimeoutError` when it
leaves the block, unless something else cancelled the task too.
"""

from __future__ import annotations

import asyncio
import os
import threading
from types import TracebackType

TICK = 0.01
#: A deadline this close (seconds) counts as due, so a timer firing a hair early does not re-file it.
_SLACK = 1e-4


class TimerWheel:
    """The armed expiries of one event loop, filed by the 10 ms slot they fall due in."""

    __slots__ = ("_cursor", "_handle", "_slots", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._slots: dict[int, set[Expiry]] = {}
        self._handle: asyncio.TimerHandle | None = None
        #: The last slot processed.
        self._cursor = int(loop.time() / TICK)

    def __len__(self) -> int:
        return sum(len(s) for s in self._slots.values())

    def add(self, expiry: Expiry) -> None:
        if self._handle is None:
            self._cursor = int(self.loop.time() / TICK)
            self._handle = self.loop.call_at((self._cursor + 1) * TICK, self._tick)
        self._file(expiry)

    def _file(self, expiry: Expiry) -> None:
        slot = int(expiry.when / TICK) + 1
        if slot <= self._cursor:
            slot = self._cursor + 1
        bucket = self._slots.get(slot)
        if bucket is None:
            bucket = self._slots[slot] = set()
        bucket.add(expiry)
        expiry.slot = slot

    def remove(self, expiry: Expiry) -> None:
        bucket = self._slots.get(expiry.slot)
        if bucket is not None:
            bucket.discard(expiry)
            if not bucket:
                del self._slots[expiry.slot]
        expiry.slot = -1

    def _tick(self) -> None:
        self._handle = None
        now = self.loop.time()
        end = int((now + _SLACK) / TICK)
        slots = self._slots
        due: list[Expiry] = []
        for slot in range(self._cursor + 1, end + 1):
            bucket = slots.pop(slot, None)
            if bucket is not None:
                due.extend(bucket)
        self._cursor = max(self._cursor, end)
        for expiry in due:
            expiry.slot = -1
            if expiry.when - now > _SLACK:
                self._file(expiry)  # moved later since it was filed
            else:
                expiry.fire()
        if slots:
            self._handle = self.loop.call_at((self._cursor + 1) * TICK, self._tick)


_local = threading.local()
# A forked child starts with no wheel: its loop, if any, is not the parent's.
os.register_at_fork(after_in_child=lambda: _local.__dict__.pop("wheel", None))


def running_loop() -> asyncio.AbstractEventLoop:
    """The running event loop, like ``asyncio.get_running_loop`` but cheaper on the hot path.

    Python 3.11's ``get_running_loop`` (and ``current_task()`` without a loop)
    makes a ``getpid`` system call every time, to notice a fork; a request made
    a handful. The loop this thread's wheel serves, while it runs, is the
    running loop (a thread runs one loop at a time, and a fork drops the wheel).
    """
    current: TimerWheel | None = getattr(_local, "wheel", None)
    if current is not None and current.loop.is_running():
        return current.loop
    return asyncio.get_running_loop()


def wheel(loop: asyncio.AbstractEventLoop) -> TimerWheel:
    """The wheel of ``loop`` (one per thread's current loop)."""
    current: TimerWheel | None = getattr(_local, "wheel", None)
    if current is None or current.loop is not loop:
        current = _local.wheel = TimerWheel(loop)
    return current


class Expiry:
    """A deadline for the code in a ``with`` block, like ``asyncio.timeout_at`` (re-enterable)."""

    __slots__ = ("_cancelling", "_task", "_wheel", "fired", "slot", "when")

    def __init__(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._wheel = wheel(loop)
        self.when = when
        self.slot = -1
        self.fired = False
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0

    def reschedule(self, when: float) -> None:
        """Move the deadline (earlier re-files it now; later is picked up when its slot comes due)."""
        earlier = when < self.when
        self.when = when
        if earlier and self.slot >= 0 and int(when / TICK) + 1 < self.slot:
            self._wheel.remove(self)
            self._wheel.add(self)

    def fire(self) -> None:
        task = self._task
        if task is not None and not task.done():
            self.fired = True
            task.cancel()

    def __enter__(self) -> Expiry:
        task = asyncio.current_task(self._wheel.loop)
        if task is None:
            raise RuntimeError("Expiry must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self.fired = False
        self._wheel.add(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.slot >= 0:
            self._wheel.remove(self)
        task = self._task
        self._task = None
        # uncancel() must run whenever we cancelled, so it comes before the type check.
        if (self.fired and task is not None and task.uncancel() <= self._cancelling
                and exc_type is asyncio.CancelledError):
            raise TimeoutError from exc


def expire_in(seconds: float) -> Expiry:
    """An :class:`Expiry` ``seconds`` from now on the running loop."""
    loop = running_loop()
    return Expiry(loop, loop.time() + seconds)
