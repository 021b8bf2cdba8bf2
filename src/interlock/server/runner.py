"""Running the gateway on interlock's own HTTP/1.1 server (``server/h1.py``): workers, signals, shutdown.

The parent binds the listening socket once (so a port in use is one clear
error) and, with ``--workers N`` above 1, forks N workers that all accept on
it; each builds its own gateway (stores, pools, counters) after the fork, runs
one uvloop event loop, and pins nothing. The parent restarts a worker that
dies, unless workers keep dying right after they start, and forwards
SIGTERM/SIGINT, and SIGHUP (every worker reloads its config). A stopping worker stops accepting, closes idle keep-alive
connections, lets requests in flight finish (at most ``grace`` seconds), then
runs the gateway's shutdown (``__rsgi_del__``: flushes the request log).
With one worker everything runs in the ``interlock serve`` process itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from interlock.server.h1 import DEFAULT_MAX_BODY, H1Server
from interlock.server.rsgi import Scope

log = logging.getLogger("interlock.server")

#: A worker that dies within this many seconds of starting counts as a crash at start-up.
_EARLY = 5.0
_MAX_EARLY_DEATHS = 5


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise SystemExit(f"interlock: cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _log_failure(scope: Scope, err: BaseException) -> None:
    log.error("request %s %s failed in the server", scope.method, scope.path, exc_info=err)


def run_worker(sock: socket.socket, load_app: Callable[[], Any], *, grace: float = 10.0,
               head_timeout: float = 10.0, keepalive_timeout: float = 75.0, body_timeout: float = 30.0,
               max_body_bytes: int = DEFAULT_MAX_BODY, drain: float = 0.0) -> int:
    """Serve on ``sock`` until SIGTERM/SIGINT; returns the exit status.

    ``drain``: seconds a stopping worker keeps accepting and serving while ``/readyz`` fails and every answer
    closes its connection, so a load balancer checking readiness moves traffic away before the listener
    closes (a rolling restart drops nothing). Then in-flight requests get ``grace`` seconds.
    """
    # Imported here: only in the process that serves.
    import uvloop

    # A reload asked for while the app is being built may come after it read the config: it is kept and
    # done once the loop runs (SIGHUP's default would end the process).
    early: list[int] = []
    signal.signal(signal.SIGHUP, lambda signum, _frame: early.append(signum))
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    app = load_app()
    app.__rsgi_init__(loop)
    server = H1Server(app.__rsgi__, loop, head_timeout=head_timeout, keepalive_timeout=keepalive_timeout,
                      body_timeout=body_timeout, max_body_bytes=max_body_bytes, on_failure=_log_failure,
                      on_refusal=getattr(app, "count_refusal", None),
                      render_refusal=getattr(app, "render_refusal", None))
    listener = loop.run_until_complete(loop.create_server(server.protocol, sock=sock, backlog=2048))
    server.start()
    host, port = sock.getsockname()[:2]
    print(f"interlock: worker {os.getpid()} ready on {host}:{port}", flush=True)
    stop = loop.create_future()

    def request_stop(signum: int) -> None:
        if not stop.done():
            stop.set_result(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop, signum)
    on_sighup = getattr(app, "on_sighup", None)
    if on_sighup is not None:  # reload the config (app.Gateway.on_sighup)
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        if early:
            loop.call_soon(on_sighup)
    try:
        loop.run_until_complete(stop)
        if drain > 0:
            start_draining = getattr(app, "start_draining", None)
            if start_draining is not None:
                start_draining()
            server.stop_accepting()  # still listening: each new connection serves one request and closes
            log.info("worker %d draining for %g s before it stops accepting", os.getpid(), drain)
            loop.run_until_complete(asyncio.sleep(drain))
        listener.close()
        server.stop_accepting()
        loop.run_until_complete(_drain(server, grace))
        server.abort_all()
        # Requests cut off above see their client gone: let them settle (log record, reservation) first.
        loop.run_until_complete(_drain(server, 1.0))
        loop.run_until_complete(listener.wait_closed())
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        app.__rsgi_del__(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return 0


async def _drain(server: H1Server, grace: float) -> None:
    deadline = time.monotonic() + grace
    while server.busy() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def serve(host: str, port: int, workers: int, load_app: Callable[[], Any], **options: Any) -> int:
    """Listen on ``host:port`` and run ``workers`` workers; ``options`` go to :func:`run_worker`."""
    sock = bind(host, port)
    if workers <= 1:
        return run_worker(sock, load_app, **options)
    return _Supervisor(sock, workers, lambda: run_worker(sock, load_app, **options)).run()


class _Supervisor:
    """The parent of ``workers`` forked workers: restarts the ones that die, stops them all on a signal."""

    def __init__(self, sock: socket.socket, workers: int, work: Callable[[], int]) -> None:
        self.sock = sock
        self.workers = workers
        self.work = work
        self.children: dict[int, float] = {}  # pid -> start time
        self.stopping = False
        self.early_deaths = 0

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                # Not the parent's forwarding handler; the config is read after this, so nothing is missed.
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                status = self.work()
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        self.children[pid] = time.monotonic()

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue

    def _reload(self, signum: int, _frame: object) -> None:
        """SIGHUP: every worker reloads the config."""
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                continue

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)
        for _ in range(self.workers):
            self._spawn()
        status = 0
        while self.children:
            try:
                pid, code = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            started = self.children.pop(pid, None)
            if started is None or self.stopping:
                continue
            log.error("worker %d exited (status %d); starting another", pid, os.waitstatus_to_exitcode(code))
            if time.monotonic() - started < _EARLY:
                self.early_deaths += 1
                if self.early_deaths >= _MAX_EARLY_DEATHS:
                    print("interlock: workers keep failing at start-up; stopping", file=sys.stderr, flush=True)
                    self._stop(signal.SIGTERM, None)
                    status = 1
                    continue
            self._spawn()
        self.sock.close()
        return status
