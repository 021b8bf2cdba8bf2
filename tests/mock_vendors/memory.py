"""An in-memory :class:`UpstreamResponse`, for property tests that feed thousands of streams without sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping


class MemoryResponse:
    def __init__(self, chunks: list[bytes], status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.chunks = chunks
        self.status = status
        self.headers: Mapping[str, str] = headers or {"content-type": "text/event-stream"}
        self.closed = False

    async def read(self) -> bytes:
        return b"".join(self.chunks)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    def close(self) -> None:
        self.closed = True
