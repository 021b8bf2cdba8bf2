"""HTTP glue over Granian's RSGI protocol: the request, responses and the route table.

RSGI hands us the raw scope and a protocol object; we add only what every
handler needs (headers, a size-limited body, JSON and error responses) and a
route table that is one dict lookup for exact paths. Errors are rendered in
the format of the API the route belongs to.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from interlock.config import IPNetwork
from interlock.core import exchange
from interlock.core.errors import GatewayError, InvalidRequest, PayloadTooLarge, RequestTimeout
from interlock.core.exchange import Disconnect, Headers, StreamOut

JSON = "application/json"



class RSGIScope(Protocol):
    method: str
    path: str
    query_string: str
    client: str
    scheme: str

    @property
    def headers(self) -> Headers: ...


class RSGIProtocol(Protocol):
    async def __call__(self) -> bytes: ...
    def __aiter__(self) -> Any: ...
    def client_disconnect(self) -> Disconnect: ...
    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...
    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None: ...
    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> StreamOut: ...


class Request:
    __slots__ = ("close", "headers", "method", "path", "proto", "query", "responded", "scope")

    #: The longest gap between two pieces of a request body, when the HTTP server does not enforce one itself
    #: (Granian: set by ``entry.py``; the native server fails a stalled body on its own).
    body_timeout: float | None = None
    #: Granian parses with hyper, laxer than llhttp on a few framing shapes: the app checks what it can see
    #: (``framing_error``) and closes the connection after anything a stricter proxy might frame differently.
    check_framing = False
    #: ``server.trusted_proxies`` (set by the app at start): peers whose ``X-Forwarded-For`` is believed.
    trusted_proxies: tuple[IPNetwork, ...] = ()

    def __init__(self, scope: RSGIScope, proto: RSGIProtocol) -> None:
        self.scope = scope
        self.proto = proto
        self.headers = scope.headers
        self.path = scope.path
        self.method = scope.method
        self.query = scope.query_string
        self.responded = False
        #: Answer with ``connection: close`` (Granian: nothing pipelined after this request is read).
        self.close = False

    def framing_error(self) -> InvalidRequest | None:
        """Under Granian: refuse ``Content-Length`` with ``Transfer-Encoding`` and any coding but one chunked (as
        the native server does), and close after a chunked body or an ``Upgrade`` request: hyper accepts chunk
        sizes with trailing whitespace and bare-LF chunk lines, which a stricter front proxy may frame
        differently, and a request after an ``Upgrade: h2c`` one must not be served past such a proxy."""
        headers = self.headers
        coding = headers.get("transfer-encoding")
        if coding is not None:
            self.close = True
            if headers.get("content-length") is not None:
                return InvalidRequest("A request may not carry both Content-Length and Transfer-Encoding.",
                                      code="content_length_with_transfer_encoding")
            codings = [c.strip(" \t").lower() for name, value in headers.items() if name == "transfer-encoding"
                       for c in value.split(",")]
            if codings != ["chunked"]:
                return InvalidRequest("Invalid Transfer-Encoding: a request body's coding must be chunked, once.",
                                      code="invalid_transfer_encoding")
        if headers.get("upgrade") is not None:
            self.close = True
        return None

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    @property
    def client_host(self) -> str:
        """The client's IP address: the peer's, or behind a trusted proxy the one it forwarded."""
        peer = peer_host(self.scope.client)
        if not self.trusted_proxies:
            return peer
        return forwarded_client(peer, self.headers.get("x-forwarded-for"), self.trusted_proxies)

    @property
    def tls(self) -> bool:
        return self.scope.scheme == "https"

    async def body(self, limit: int) -> bytes:
        """The whole body, refused with 413 past ``limit``; a stalled or abandoned upload is a client error."""
        try:
            return await self._body(limit)
        except TimeoutError as exc:
            self.close = True
            raise RequestTimeout(f"The request body did not arrive: {exc}.") from None
        except exchange.CLIENT_GONE:
            raise InvalidRequest("The client closed the connection before sending the whole request body.",
                                 code="incomplete_body") from None
        except PayloadTooLarge:
            self.close = True  # the rest of the body is not read: nothing after it on this connection is either
            raise

    async def _body(self, limit: int) -> bytes:
        declared = self.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size > limit:
                raise _too_large(limit)
            if size >= 0 and self.body_timeout is None:
                return await self.proto()
        # No length given (chunked), or a gap limit to enforce: read incrementally and stop at the limit.
        parts: list[bytes] = []
        total = 0
        chunks = aiter(self.proto)
        gap = self.body_timeout
        while True:
            try:
                chunk = await (anext(chunks) if gap is None else asyncio.wait_for(anext(chunks), gap))
            except StopAsyncIteration:
                break
            except TimeoutError:
                if gap is None:
                    raise  # the server's own body timeout (native: BodyTimeout)
                raise TimeoutError(f"the request body stalled: no bytes for {gap:g} s") from None
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            parts.append(chunk)
        return b"".join(parts)

    def send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.responded = True
        if self.close:
            headers = [*headers, ("connection", "close")]
        self.proto.response_bytes(status, headers, body)

    def json(self, status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> None:
        out = [("content-type", JSON)]
        if headers:
            out.extend(headers)
        self.send(status, orjson.dumps(data), out)

    def client_disconnect(self) -> Disconnect:
        return self.proto.client_disconnect()

    def stream(self, status: int, headers: list[tuple[str, str]]) -> StreamOut:
        self.responded = True
        if self.close:
            headers = [*headers, ("connection", "close")]
        return self.proto.response_stream(status, headers)


def peer_host(client: str) -> str:
    """``"203.0.113.9:5123"`` → ``"203.0.113.9"``; ``"[::1]:5123"`` or ``"::1:5123"`` → ``"::1"``."""
    if client.startswith("["):
        return client[1:client.find("]")] if "]" in client else client[1:]
    host, sep, port = client.rpartition(":")
    return host if sep and port.isdigit() else client


def forwarded_client(peer: str, forwarded: object, trusted: tuple[IPNetwork, ...]) -> str:
    """The client behind trusted proxies: ``X-Forwarded-For`` read from the right, skipping trusted hops
    (each proxy appends the address it received from), so a client cannot name itself by sending the header.
    ``peer`` itself when it is not trusted, or an entry is not an address."""
    if not _trusted(peer, trusted) or forwarded is None:
        return peer
    hops = [h.strip() for h in str(forwarded).split(",")]
    client = peer
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return client  # garbage where an address should be: the last address known good
            return hop
        client = hop
    return client


def _trusted(host: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr in net for net in trusted)


def refusal_error(status: int, code: str, message: str) -> GatewayError:
    """A refusal of the HTTP server (a status, a reason code) as the error its route renders."""
    cls = {408: RequestTimeout, 413: PayloadTooLarge}.get(status, InvalidRequest)
    return cls(message, code=code, status=status)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than this gateway accepts ({limit} bytes; "
                           "see server.max_body_bytes).")


Handler = Callable[[Request], Awaitable[None]]
ErrorRenderer = Callable[[GatewayError], bytes]


@dataclass(frozen=True, slots=True)
class Route:
    methods: frozenset[str]
    handler: Handler
    render_error: ErrorRenderer
    #: The path as registered (``/v1/models/*``): a bounded label for metrics.
    label: str = ""


class Router:
    """Exact paths in a dict; a few prefix routes (``/v1/models/...``) checked in order."""

    def __init__(self) -> None:
        self.exact: dict[str, Route] = {}
        self.prefixes: list[tuple[str, Route]] = []

    def add(self, path: str, methods: tuple[str, ...], handler: Handler, render_error: ErrorRenderer) -> None:
        route = Route(frozenset(methods), handler, render_error, path)
        if path.endswith("*"):
            self.prefixes.append((path[:-1], route))
        else:
            self.exact[path] = route
            self.exact[path + "/"] = route

    def match(self, path: str) -> Route | None:
        route = self.exact.get(path)
        if route is not None:
            return route
        for prefix, candidate in self.prefixes:
            if path.startswith(prefix):
                return candidate
        return None
