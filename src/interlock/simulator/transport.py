"""The simulator as an in-process :class:`~interlock.vendors.transport.Transport`.

Vendor adapters hand it the exact request they would send over HTTP; it
answers with the exact bytes a vendor would send, paced in (scaled)
simulated time. No socket is opened, so tests and demos are fast and
hermetic, yet the adapters' real decoding code runs.

Timeouts follow :mod:`interlock.vendors.transport`: ``first_byte`` until the
headers and first body bytes, ``idle`` between body reads, ``total`` for the
whole exchange, with the same :class:`UpstreamTimeout` messages. They are
measured in *simulated* seconds, the same clock as the simulated latencies:
with ``time_scale: 0`` a hang fails instantly with the timeout it would have
hit, and with ``time_scale: 1`` simulated and wall time coincide.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import urlsplit

from interlock.catalog import Catalog
from interlock.core.errors import UpstreamError, UpstreamTimeout
from interlock.core.vendor import Timeouts
from interlock.simulator.engine import Engine
from interlock.simulator.plan import Plan
from interlock.simulator.settings import SimulatorSettings
from interlock.vendors.transport import UpstreamResponse

BASE_URL = "http://simulator.internal"
_MIN_SLEEP = 0.001  # below this, pacing debt is carried to the next event instead of sleeping


def _total_error(timeouts: Timeouts) -> UpstreamTimeout:
    return UpstreamTimeout(f"the vendor did not finish within the total timeout of {timeouts.total:g}s")


def _first_byte_error(timeouts: Timeouts) -> UpstreamTimeout:
    if timeouts.total <= timeouts.first_byte:
        return _total_error(timeouts)
    return UpstreamTimeout(f"the vendor sent no data within the first-byte timeout of {timeouts.first_byte:g}s")


def _idle_error(timeouts: Timeouts) -> UpstreamTimeout:
    return UpstreamTimeout(f"the vendor stream stalled for longer than the idle timeout of {timeouts.idle:g}s")


class _Pacer:
    """Maps simulated seconds since the request to wall-clock sleeps (scaled, drift-free)."""

    __slots__ = ("_loop", "_scale", "_start")

    def __init__(self, scale: float) -> None:
        self._scale = scale
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()

    async def until(self, sim_seconds: float) -> None:
        if self._scale == 0:
            return
        delay = self._start + sim_seconds * self._scale - self._loop.time()
        if delay > _MIN_SLEEP:
            await asyncio.sleep(delay)


class SimulatedResponse:
    """An :class:`UpstreamResponse` replaying a plan's body events on the simulated clock."""

    __slots__ = ("_closed", "_consumed", "_pacer", "_plan", "_timeouts", "headers", "status")

    def __init__(self, plan: Plan, timeouts: Timeouts, pacer: _Pacer) -> None:
        self._plan = plan
        self._timeouts = timeouts
        self._pacer = pacer
        self._consumed = False
        self._closed = False
        self.status = plan.status
        self.headers: Mapping[str, str] = plan.headers

    async def read(self) -> bytes:
        parts: list[bytes] = []
        try:
            async for data in self._events():
                parts.append(data)
        except _Broken as exc:
            raise UpstreamError(f"the vendor connection failed while reading the answer: {exc.reason}") from None
        return b"".join(parts)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._events():
                yield data
        except _Broken as exc:
            raise UpstreamError(f"the vendor connection broke mid-stream: {exc.reason}") from None

    async def _events(self) -> AsyncIterator[bytes]:
        if self._consumed:
            raise RuntimeError("the response body was already read")
        self._consumed = True
        plan, timeouts = self._plan, self._timeouts
        last = plan.first_byte_at or 0.0
        for at, data in plan.events:
            if self._closed:
                return
            if at > timeouts.total:
                await self._pacer.until(timeouts.total)
                raise _total_error(timeouts)
            if at - last > timeouts.idle:
                await self._pacer.until(last + timeouts.idle)
                raise _idle_error(timeouts)
            await self._pacer.until(at)
            last = at
            yield data
        if plan.ending == "drop":
            raise _Broken("Response payload is not completed: the connection closed before the end of the body")
        if plan.ending == "reset":
            raise _Broken("[Errno 104] Connection reset by peer")

    def close(self) -> None:
        self._closed = True


class _Broken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SimulatorTransport:
    """In-process vendor for every catalog model (vendor id ``simulator``)."""

    def __init__(
        self,
        settings: SimulatorSettings,
        catalog: Catalog | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.engine = Engine(settings, catalog, clock=clock)

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        parts = urlsplit(url)
        plan = self.engine.plan(method, parts.path, parts.query, headers, body)
        pacer = _Pacer(self.settings.time_scale)  # simulated delays start once the answer is planned
        host = parts.netloc or "simulator.internal"
        if plan.refuse:
            raise UpstreamError(f"could not reach the vendor: Cannot connect to host {host} [Connection refused]")
        deadline = min(timeouts.first_byte, timeouts.total)
        if plan.first_byte_at is None or plan.first_byte_at > deadline:
            await pacer.until(deadline)
            raise _first_byte_error(timeouts)
        await pacer.until(plan.first_byte_at)
        return SimulatedResponse(plan, timeouts, pacer)

    async def close(self) -> None:
        return None
