"""A scripted vendor on a real socket: it records each request and plays back the next scripted answer.

Translating adapters are tested against the bytes a vendor really sends, so
the answer is scripted as raw body slices (an SSE stream split mid-event, a
Bedrock event-stream split mid-frame) written one by one with a flush, exactly
as a vendor's server would. A ``handler`` may compute the answer from the
request instead (the Bedrock mock checks the SigV4 signature that way).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.socket_app import SocketApp


@dataclass
class Received:
    method: str
    path: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    chunks: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


Handler = Callable[[Received], Reply]


class ScriptedVendor(SocketApp):
    client_max_size = 64 * 1024 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []
        self.replies: deque[Reply | Handler] = deque()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(self, status: int = 200, body: bytes | dict[str, Any] = b"", *, chunks: list[bytes] | None = None,
              headers: dict[str, str] | None = None) -> None:
        raw = orjson.dumps(body) if isinstance(body, dict) else body
        if headers is None:
            headers = {"content-type": "text/event-stream" if chunks is not None else "application/json"}
        self.replies.append(Reply(status, raw, chunks, headers))

    def handle_with(self, handler: Handler) -> None:
        self.replies.append(handler)

    @property
    def last(self) -> Received:
        return self.received[-1]

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received = Received(request.method, request.path, request.raw_path.split("?")[0], request.query_string,
                            {k.lower(): v for k, v in request.headers.items()}, body)
        self.received.append(received)
        if not self.replies:
            return web.Response(status=599, text="no scripted reply")
        scripted = self.replies.popleft()
        reply = scripted if isinstance(scripted, Reply) else scripted(received)
        if reply.chunks is None:
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        await resp.prepare(request)
        for chunk in reply.chunks:
            await resp.write(chunk)
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp


def split_every(data: bytes, size: int) -> list[bytes]:
    """Body slices of ``size`` bytes: events and frames cut at arbitrary points."""
    return [data[i:i + size] for i in range(0, len(data), size)]
