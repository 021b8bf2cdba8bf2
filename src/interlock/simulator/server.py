"""The simulator over real HTTP, for benchmarks, chaos runs and any client that needs a socket.

The same :class:`~interlock.simulator.engine.Engine` plans every exchange; this
module only replays the plan on a connection. Socket-level faults are real:
``refuse`` aborts the connection with a TCP reset before any response byte
(a listening server cannot un-accept a connection, so this is the closest a
running server gets to ECONNREFUSED: the client sees the connection die with
no answer), ``reset`` sends the status line and headers then resets,
``stop_after`` / a dropped body closes the socket without the terminating
chunk, and ``hang`` holds the connection open until the client gives up.

Events due at the same moment are written together, so a fast stream costs a
few writes, not one per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Collection

from aiohttp import web

from interlock.simulator.engine import FORMATS, Engine
from interlock.simulator.plan import Plan

_ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
_FORMATS: web.AppKey[tuple[str, ...]] = web.AppKey("formats")
_SCALE: web.AppKey[float] = web.AppKey("scale", float)
_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def _abort(request: web.BaseRequest, *, rst: bool) -> None:
    """Kill the connection: with ``rst`` as a TCP reset (SO_LINGER 0), else a plain close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if rst and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if rst:
        transport.abort()
    else:
        transport.close()


class _Clock:
    __slots__ = ("_loop", "_scale", "_start")

    def __init__(self, scale: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._scale = scale
        self._start = self._loop.time()

    def due(self, at: float) -> float:
        """Seconds of wall time until simulated second ``at`` (<= 0 when already due)."""
        return self._start + at * self._scale - self._loop.time() if self._scale else 0.0

    async def until(self, at: float) -> None:
        delay = self.due(at)
        if delay > 0.001:
            await asyncio.sleep(delay)


async def _handle(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    engine = request.app[_ENGINE]
    formats: tuple[str, ...] = request.app[_FORMATS]
    plan = engine.plan(request.method, request.path, request.query_string, request.headers, body, formats)
    clock = _Clock(request.app[_SCALE])  # simulated delays start once the answer is planned
    if plan.refuse:
        _abort(request, rst=True)
        raise asyncio.CancelledError  # nothing may be written on an aborted connection
    if plan.first_byte_at is None:
        await asyncio.Event().wait()  # hang: until the client disconnects (handler cancellation)
    return await _replay(request, plan, clock)


async def _replay(request: web.Request, plan: Plan, clock: _Clock) -> web.StreamResponse:
    headers = {k: v for k, v in plan.headers.items() if k not in _HOP_HEADERS}
    response = web.StreamResponse(status=plan.status, headers=headers)
    if plan.streaming:
        response.enable_chunked_encoding()
    else:
        declared = plan.headers.get("content-length")
        response.content_length = int(declared) if declared else sum(len(d) for _, d in plan.events)
    await clock.until(plan.first_byte_at or 0.0)
    await response.prepare(request)
    events = plan.events
    i = 0
    while i < len(events):
        await clock.until(events[i][0])
        batch = [events[i][1]]
        i += 1
        while i < len(events) and clock.due(events[i][0]) <= 0.001:
            batch.append(events[i][1])
            i += 1
        await response.write(b"".join(batch))
    if plan.ending != "eof":
        _abort(request, rst=plan.ending == "reset")
        raise asyncio.CancelledError
    await response.write_eof()
    return response


def make_app(engine: Engine, formats: Collection[str] = FORMATS, time_scale: float = 1.0) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[_ENGINE] = engine
    served: tuple[str, ...] = tuple(formats)
    app[_FORMATS] = served
    app[_SCALE] = time_scale
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


async def start(
    engine: Engine,
    host: str = "127.0.0.1",
    port: int = 0,
    formats: Collection[str] = FORMATS,
    time_scale: float = 1.0,
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (``await runner.cleanup()`` to stop) and the bound port."""
    runner = web.AppRunner(make_app(engine, formats, time_scale), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or ()
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
