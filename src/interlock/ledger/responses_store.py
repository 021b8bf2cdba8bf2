"""Stored Responses API responses: what ``previous_response_id`` and ``GET /v1/responses/{id}`` read.

A response is kept with the conversation that produced it, already in the
canonical (Chat) shape, so a follow-up request is rebuilt with one read - no
walk up a chain of ids. It lives in its own table of the embedded state file,
on a connection of its own, and every read and write runs in a worker thread
(``asyncio.to_thread``): the event loop never waits on SQLite.

A write is started when the answer is sent but may finish a moment later; a
follow-up that names the response before then waits for that write (in this
process) instead of missing it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("interlock")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id                   TEXT PRIMARY KEY,
    created_at           REAL NOT NULL,
    model                TEXT,
    owner                TEXT,
    previous_response_id TEXT,
    response             BLOB NOT NULL,
    input_items          BLOB NOT NULL,
    conversation         BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created_at);
"""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    model: str
    owner: str | None
    previous_response_id: str | None
    #: The response object exactly as it was returned.
    response: dict[str, Any]
    #: This request's input items (normalised to a list).
    input_items: list[Any]
    #: The canonical messages a follow-up continues from (previous turns, this input, this output; no instructions).
    conversation: list[dict[str, Any]]
    created_at: float = 0.0


class ResponsesStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._conn.executescript(_SCHEMA)
        self._writes: dict[str, asyncio.Future[None]] = {}

    # ------------------------------------------------------------ blocking (worker threads)

    def put_sync(self, item: StoredResponse) -> None:
        row = (item.id, item.created_at or time.time(), item.model, item.owner, item.previous_response_id,
               orjson.dumps(item.response), orjson.dumps(item.input_items), orjson.dumps(item.conversation))
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses (id, created_at, model, owner, previous_response_id, "
                               "response, input_items, conversation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def get_sync(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            row = self._conn.execute("SELECT id, created_at, model, owner, previous_response_id, response, input_items, "
                                     "conversation FROM responses WHERE id = ?", (response_id,)).fetchone()
        if row is None:
            return None
        return StoredResponse(id=row[0], created_at=row[1], model=row[2], owner=row[3], previous_response_id=row[4],
                              response=orjson.loads(row[5]), input_items=orjson.loads(row[6]),
                              conversation=orjson.loads(row[7]))

    def delete_sync(self, response_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM responses WHERE id = ?", (response_id,))
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ async (event loop)

    def save_soon(self, item: StoredResponse) -> None:
        """Start writing ``item`` in a worker thread; the caller does not wait for it."""
        future = asyncio.ensure_future(asyncio.to_thread(self.put_sync, item))
        self._writes[item.id] = future
        future.add_done_callback(lambda f: self._written(item.id, f))

    def _written(self, response_id: str, future: asyncio.Future[None]) -> None:
        if self._writes.get(response_id) is future:
            del self._writes[response_id]
        if not future.cancelled() and future.exception() is not None:
            log.error("could not store response %s: %s", response_id, future.exception())

    async def get(self, response_id: str) -> StoredResponse | None:
        pending = self._writes.get(response_id)
        if pending is not None:
            await asyncio.wait([pending])  # a failed write was logged; the read then finds nothing
        return await asyncio.to_thread(self.get_sync, response_id)

    async def delete(self, response_id: str) -> bool:
        pending = self._writes.get(response_id)
        if pending is not None:
            await asyncio.wait([pending])
        return await asyncio.to_thread(self.delete_sync, response_id)
