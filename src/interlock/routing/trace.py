"""Recent routing traces by request id, for ``GET /v1/generation`` before the log's flush.

The trace itself (:class:`~interlock.core.trace.RoutingTrace`) lives in core.
"""

from __future__ import annotations

from typing import Any, Protocol


class RowSource(Protocol):
    def row(self) -> dict[str, Any]: ...


class TraceLog:
    """Recent generations by request id; bounded (a ring of ids), so memory stays flat.

    Entries are snapshots rendered to a row only when asked for.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._items: dict[str, RowSource] = {}
        self._ring: list[str | None] = [None] * max(1, limit)
        self._next = 0

    def put(self, request_id: str, record: RowSource) -> None:
        ring = self._ring
        i = self._next
        evicted = ring[i]
        if evicted is not None:
            self._items.pop(evicted, None)
        ring[i] = request_id
        self._items[request_id] = record
        self._next = i + 1 if i + 1 < len(ring) else 0

    def get(self, request_id: str) -> dict[str, Any] | None:
        item = self._items.get(request_id)
        return None if item is None else item.row()

    def __len__(self) -> int:
        return len(self._items)
