"""One HTTP exchange as handlers see it, whatever server carries it (the native one or Granian).

Handlers and the pipeline are typed against :class:`Exchange`; ``server/http.Request``
implements it over the RSGI objects either server hands the app. Nothing here imports
a server: the one server-specific fact, the exception Granian raises when the client has
gone, is added to :data:`CLIENT_GONE` by the module that serves with Granian.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

#: What sending to or reading from a client that has gone raises: ``ConnectionError`` (the native server's
#: ``ClientGone`` is one), plus Granian's ``ProtocolClosed`` once :func:`add_client_gone` names it. Read it
#: as ``exchange.CLIENT_GONE`` at the ``except`` so the addition is seen.
CLIENT_GONE: tuple[type[BaseException], ...] = (ConnectionError,)


def add_client_gone(exc: type[BaseException]) -> None:
    global CLIENT_GONE
    if exc not in CLIENT_GONE:
        CLIENT_GONE = (*CLIENT_GONE, exc)


class Headers(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def items(self) -> Any: ...


class StreamOut(Protocol):
    """A streamed response body."""

    async def send_bytes(self, data: bytes) -> None: ...


class Disconnect(Protocol):
    """Completes when the client disconnects."""

    def add_done_callback(self, fn: Callable[[Any], object]) -> None: ...

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int: ...

    def cancel(self) -> bool: ...


class Exchange(Protocol):
    path: str
    method: str
    #: The raw query string (no ``?``).
    query: str
    headers: Headers
    #: True once a status line went out (an error can then only be an event in the stream).
    responded: bool

    @property
    def peer(self) -> str:
        """The client's address, without its port."""
        ...

    def header(self, name: str) -> str | None: ...

    async def body(self, limit: int) -> bytes:
        """The whole body; 413 past ``limit``, 408 when it stalls, 400 when the client leaves mid-body."""
        ...

    def send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None: ...

    def json(self, status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> None: ...

    def stream(self, status: int, headers: list[tuple[str, str]]) -> StreamOut: ...

    def client_disconnect(self) -> Disconnect: ...
