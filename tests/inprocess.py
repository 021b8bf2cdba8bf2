"""A gateway run in this process, called through its RSGI entry with stand-in objects (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from interlock.app import Gateway
from interlock.config import load_settings
from interlock.vendors.registry import VENDOR_TABLE
from tests.conftest import MASTER_KEY


class Headers(dict[str, str]):
    pass


class Scope:
    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.query_string = ""
        self.client = "127.0.0.1:50000"
        self.scheme = "http"
        self.headers = Headers(headers)


class Stream:
    def __init__(self, sink: list[bytes]) -> None:
        self.sink = sink

    async def send_bytes(self, data: bytes) -> None:
        self.sink.append(data)


class Proto:
    """Just enough of the RSGI protocol: a body, a disconnect future that never fires, captured answers."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self._gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def __call__(self) -> bytes:
        return self.body

    def __aiter__(self) -> Any:
        async def one() -> Any:
            yield self.body
        return one()

    def client_disconnect(self) -> asyncio.Future[None]:
        return self._gone

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers = status, dict(headers)
        self.chunks.append(body)

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.response_bytes(status, headers, body.encode())

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Stream:
        self.status, self.headers = status, dict(headers)
        return Stream(self.chunks)


@contextmanager
def running_gateway(config_text: str, home: Path) -> Iterator[tuple[Gateway, asyncio.AbstractEventLoop]]:
    """A Gateway built from ``config_text`` with its state in ``home``, its log writer and governance loop
    started on a loop of its own; stopped and closed on exit."""
    config = home / "interlock.yaml"
    config.write_text(config_text)
    settings = load_settings(config, vendor_table=VENDOR_TABLE, environ={"INTERLOCK_HOME": str(home / "state")})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERLOCK_MASTER_KEY", MASTER_KEY)
        gw = Gateway(settings)
    gw.obs.start(loop)
    gw.governance.start(loop)
    try:
        yield gw, loop
    finally:
        loop.run_until_complete(gw.governance.stop())
        loop.run_until_complete(gw.obs.stop())
        loop.run_until_complete(gw.http.close())
        loop.close()
        asyncio.set_event_loop(None)
