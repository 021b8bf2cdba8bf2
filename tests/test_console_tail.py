"""The live tail's shared poll (console/tail.py): one read per poll whatever the number of pages, late records
caught by the look-back, each page only what it may see, a slow page dropping its oldest events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from interlock.console.requests import row_view
from interlock.console.tail import QUEUE, LogTail
from interlock.core.errors import GatewayError
from interlock.ledger.schema import LogQuery
from tests.fake_clock import FakeClock


class Store:
    """The log store's query, over a list (newest first, like the real one)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.queries: list[LogQuery] = []

    async def query(self, q: LogQuery) -> list[dict[str, Any]]:
        self.queries.append(q)
        found = [r for r in self.rows if q.since is None or r["received_at"] >= q.since]
        return sorted(found, key=lambda r: r["received_at"], reverse=True)[:q.limit]


def rec(rid: str, at: float, project: str = "alpha") -> dict[str, Any]:
    return {"id": rid, "received_at": at, "project": project, "status": 200, "model": "m", "vendor": "v"}


def drain(follower: Any) -> list[str]:
    """The request ids of the SSE events a follower has queued."""
    out = []
    while not follower.queue.empty():
        event = follower.queue.get_nowait()
        assert event.startswith(b"event: request\ndata: ") and event.endswith(b"\n\n")
        out.append(orjson.loads(event.split(b"data: ", 1)[1])["id"])
    return out


async def test_one_query_per_poll_for_every_page_and_each_sees_its_own() -> None:
    clock = FakeClock()
    now = clock.time()
    store = Store()
    store.rows = [rec("old", now - 30), rec("a1", now - 5), rec("b1", now - 4, "beta")]
    tail = LogTail(store, row_view, clock=clock)  # type: ignore[arg-type]
    admins = [tail.follow(None, now - 10) for _ in range(50)]
    alpha = tail.follow("alpha", now - 10)
    tail._task.cancel()  # type: ignore[union-attr]  # polled by hand below
    await tail.poll()
    assert len(store.queries) == 1
    assert drain(admins[0]) == ["a1", "b1"] and drain(admins[49]) == ["a1", "b1"]  # since the page's newest
    assert drain(alpha) == ["a1"]
    # A record that started earlier but was written later (a long request) is caught, and sent once.
    store.rows += [rec("late", now - 60), rec("b2", now + 1, "beta")]
    await tail.poll()
    await tail.poll()
    assert len(store.queries) == 3
    assert drain(admins[0]) == ["late", "b2"] and drain(alpha) == ["late"]
    tail.leave(alpha)
    assert alpha not in tail.followers


async def test_a_slow_page_drops_its_oldest_and_the_worker_caps_streams() -> None:
    clock = FakeClock()
    store = Store()
    tail = LogTail(store, row_view, clock=clock)  # type: ignore[arg-type]
    slow = tail.follow(None, 0.0)
    tail._task.cancel()  # type: ignore[union-attr]
    for i in range(QUEUE + 5):
        slow.put(str(i).encode())
    assert slow.dropped == 5 and slow.queue.get_nowait() == b"5"
    for _ in range(99):
        tail.follow(None, 0.0)
    with pytest.raises(GatewayError) as busy:
        tail.follow(None, 0.0)
    assert busy.value.status == 503
