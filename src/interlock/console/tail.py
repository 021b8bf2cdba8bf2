"""The request log's live tail: ``GET /console/requests/tail``, one server-sent event stream per open page.

However many pages follow the log, a worker reads it once a second (:class:`LogTail`): one indexed query for
the newest records of the last two minutes (records are written when a request ends, so a long request's
record lands after shorter ones that started later; the look-back catches it), ids already seen are skipped,
and each new record goes to the streams allowed to see it — a project key's stream only gets its project's.
No stream queries the store itself, so a hundred open pages cost what one does (no polling storm, LiteLLM
#20720). The poll stops when the last stream closes. A stream re-checks its session every minute (a revoked
key ends it), sends a comment every 15 s to keep proxies from closing it, and a page that falls
:data:`QUEUE` events behind has the oldest dropped (it is a live view; the log keeps everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from interlock.console.sessions import Sessions
from interlock.console.signin import signin_url
from interlock.console.web import SECURITY_HEADERS, redirect
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.errors import GatewayError
from interlock.core.exchange import CLIENT_GONE, Exchange
from interlock.ledger.schema import LogQuery
from interlock.ledger.writer import LogStore

log = logging.getLogger("interlock.console")

LOOKBACK_S = 120.0
#: Newest records read per poll: past this many new records a second, the tail shows the newest (a page
#: keeps 200 rows, and a person reads far fewer a second: reading more would only cost the worker).
BATCH = 100
#: Ids remembered as sent (more than a look-back's worth at BATCH per second would be wasted).
SEEN = 20_000
QUEUE = 1_000
MAX_STREAMS = 100
KEEPALIVE_S = 15.0
RECHECK_S = 60.0
SSE = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-store"),
       ("x-accel-buffering", "no"), *SECURITY_HEADERS]


@dataclass(eq=False)
class Follower:
    """One open stream: what it may see, from when, and its queue (None in it: the stream is over)."""

    project: str | None
    since: float
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    primed: bool = False
    dropped: int = 0

    def put(self, item: bytes | None) -> None:
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()  # the oldest goes: this is a live view
                self.dropped += 1


class LogTail:
    def __init__(self, store: LogStore, view: Callable[[dict[str, Any]], dict[str, Any]], *,
                 interval: float = 1.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.view = view
        self.interval = interval
        self.clock = clock
        self.followers: set[Follower] = set()
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.polls = 0
        self._task: asyncio.Task[None] | None = None

    def follow(self, project: str | None, since: float) -> Follower:
        if len(self.followers) >= MAX_STREAMS:
            raise GatewayError(f"This worker already streams the log to {MAX_STREAMS} pages; try again later.",
                               status=503, code="tail_busy")
        follower = Follower(project, since)
        self.followers.add(follower)
        if self._task is None or self._task.done():
            self.seen.clear()
            self._task = asyncio.get_running_loop().create_task(self._run())
        return follower

    def leave(self, follower: Follower) -> None:
        self.followers.discard(follower)

    async def _run(self) -> None:
        while self.followers:
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 - a store outage: the streams stay open, retried next second
                log.warning("live tail: the log could not be read: %s", exc)
            await asyncio.sleep(self.interval)

    async def poll(self) -> None:
        """One read of the store; each record not sent before goes to the followers that may see it."""
        self.polls += 1
        rows = await self.store.query(LogQuery(since=self.clock.time() - LOOKBACK_S, limit=BATCH))
        rows.reverse()  # oldest first, so a page prepending each one ends newest on top
        fresh = [r for r in rows if r["id"] not in self.seen]
        for r in fresh:
            self.seen[r["id"]] = None
        while len(self.seen) > SEEN:
            self.seen.popitem(last=False)
        events: dict[str, bytes] = {}  # each record rendered once, however many pages get it

        def event(r: dict[str, Any]) -> bytes:
            found = events.get(r["id"])
            if found is None:
                found = events[r["id"]] = (b"event: request\ndata: " + orjson.dumps(
                    {**self.view(r), "received_at": r["received_at"]}) + b"\n\n")
            return found

        for follower in list(self.followers):
            # A new follower first gets what arrived since its page was rendered, then only new records.
            batch = [r for r in rows if r["received_at"] > follower.since] if not follower.primed else fresh
            follower.primed = True
            for r in batch:
                if follower.project is None or r.get("project") == follower.project:
                    follower.put(event(r))


class TailStream:
    """``GET /console/requests/tail?since=EPOCH``: the stream a request-log page opens (``static/requests.js``)."""

    def __init__(self, sessions: Sessions, tail: LogTail | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.sessions = sessions
        self.tail = tail
        self.clock = clock

    async def __call__(self, req: Exchange) -> None:
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, signin_url("/console/requests"))
            return
        if self.tail is None:
            raise GatewayError("The request log is off on this gateway (logging.level: off).", status=404,
                               code="log_off")
        raw = parse_qs(req.query).get("since", [""])[0]
        try:
            since = float(raw) if raw else self.clock.time()
        except ValueError:
            raise GatewayError(f"Invalid 'since': expected epoch seconds, got {raw[:40]!r}.", status=400,
                               param="since", code="invalid_value") from None
        principal = session.principal
        follower = self.tail.follow(None if principal.admin else principal.project, since)
        gone = req.client_disconnect()

        def closed(_: object) -> None:
            follower.put(None)

        gone.add_done_callback(closed)
        out = req.stream(200, SSE)
        checked = self.clock.monotonic()
        try:
            await out.send_bytes(b"retry: 5000\n: following the request log\n\n")
            while True:
                try:
                    item = await asyncio.wait_for(follower.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    item = b": keep-alive\n\n"
                if item is None:
                    return
                # What has queued up goes out in one write.
                while not follower.queue.empty() and (more := follower.queue.get_nowait()) is not None:
                    item += more
                await out.send_bytes(item)
                if self.clock.monotonic() - checked > RECHECK_S:
                    checked = self.clock.monotonic()
                    if await self.sessions.resolve(req) is None:
                        await out.send_bytes(b"event: end\ndata: {\"reason\": \"signed out\"}\n\n")
                        return
        except CLIENT_GONE:
            return
        finally:
            self.tail.leave(follower)
            with contextlib.suppress(ValueError):
                gone.remove_done_callback(closed)
