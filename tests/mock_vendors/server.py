"""A scripted vendor on a real socket: it records each request and plays back the next scripted answer.

Translating adapters are tested against the bytes a vendor really sends, so
the answer is scripted as raw body slices (an SSE stream split mid-event, a
Bedrock event-stream split mid-frame) written one by one with a flush, exactly
as a vendor's server would. A ``handler`` may compute the answer from the
request instead (the Bedrock mock checks the SigV4 signature that way).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


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


class ScriptedVendor:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: deque[Reply | Handler] = deque()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

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

    def start(self) -> ScriptedVendor:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

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

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def split_every(data: bytes, size: int) -> list[bytes]:
    """Body slices of ``size`` bytes: events and frames cut at arbitrary points."""
    return [data[i:i + size] for i in range(0, len(data), size)]
