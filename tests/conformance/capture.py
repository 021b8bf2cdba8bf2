"""Capture every HTTP answer a test gets from an interlock gateway, for tests/conformance/check.py.

Two client stacks are wrapped, without changing what the test reads:
- httpx2 (the openai and anthropic SDKs): the transports' ``handle_request`` / ``handle_async_request``
  return a response whose byte stream is teed; the answer is checked when the stream is exhausted.
- http.client (urllib.request, raw ``http.client`` and ``requests`` through urllib3): the response's
  read methods are teed; the answer is checked when http.client reaches the end of the body.
An answer read only in part (a test that stops early) is counted as skipped, never checked.
Only answers from ports registered with ``register`` (gateways) are captured, not mock vendors.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
import urllib3.response

from tests.conformance.check import Checker, Violation

_lock = threading.Lock()
_ports: set[int] = set()
checker = Checker()
#: Violations not yet claimed by the running test's fixture.
pending: list[Violation] = []
#: httpx2 answers being read (teed streams not yet finished): only these need a GC pass to be closed.
_unfinished = 0
installed = False


def register(port: int) -> None:
    with _lock:
        _ports.add(port)


def unregister(port: int) -> None:
    with _lock:
        _ports.discard(port)


def _watched(port: int | None) -> bool:
    with _lock:
        return port in _ports


def _report(method: str, url: str, status: int, content_type: str, body: bytes, partial: bool = False) -> None:
    with _lock:
        found = checker.check(method, url, status, content_type, body, partial=partial)
        pending.extend(found)


# --- httpx2 -------------------------------------------------------------------------------------
class _Tee(httpx2.SyncByteStream):
    def __init__(self, inner: Any, done: Callable[[bytes], None]) -> None:
        self._inner, self._parts, self._complete = inner, list[bytes](), False
        self._done: Callable[[bytes], None] | None = done
        _opened()

    def __iter__(self) -> Iterator[bytes]:
        for part in self._inner:
            self._parts.append(part)
            yield part
        self._complete = True
        _finish(self)  # check it now: the client may close the stream much later, or never

    def close(self) -> None:
        self._inner.close()
        _finish(self)


class _AsyncTee(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, done: Callable[[bytes], None]) -> None:
        self._inner, self._parts, self._complete = inner, list[bytes](), False
        self._done: Callable[[bytes], None] | None = done
        _opened()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            self._parts.append(part)
            yield part
        self._complete = True
        _finish(self)

    async def aclose(self) -> None:
        await self._inner.aclose()
        _finish(self)


def _opened() -> None:
    global _unfinished
    with _lock:
        _unfinished += 1


def unfinished() -> int:
    """How many httpx2 answers are still being read (a test may have abandoned them mid-stream)."""
    with _lock:
        return _unfinished


def _finish(tee: _Tee | _AsyncTee) -> None:
    global _unfinished
    done = tee._done
    if done is None:
        return
    tee._done = None
    with _lock:
        _unfinished -= 1
    body = b"".join(tee._parts)
    if tee._complete:
        done(body)
    elif body.endswith((b"\n\n", b"\r\n\r\n")):  # an event stream closed between events
        done(body + _PARTIAL)
    else:
        with _lock:
            checker.skipped["answer read in part"] += 1


_PARTIAL = b"\x00partial"


def _httpx_done(request: httpx2.Request, response: httpx2.Response) -> Callable[[bytes], None]:
    def done(body: bytes) -> None:
        partial = body.endswith(_PARTIAL)
        ctype = response.headers.get("content-type", "")
        if partial and not ctype.startswith("text/event-stream"):
            with _lock:
                checker.skipped["answer read in part"] += 1
            return
        _report(request.method, str(request.url), response.status_code, ctype,
                body.removesuffix(_PARTIAL), partial)
    return done


_sync_handle = httpx2.HTTPTransport.handle_request
_async_handle = httpx2.AsyncHTTPTransport.handle_async_request


def _handle_request(self: httpx2.HTTPTransport, request: httpx2.Request) -> httpx2.Response:
    response = _sync_handle(self, request)
    if _watched(request.url.port):
        response.stream = _Tee(response.stream, _httpx_done(request, response))
    return response


async def _handle_async_request(self: httpx2.AsyncHTTPTransport, request: httpx2.Request) -> httpx2.Response:
    response = await _async_handle(self, request)
    if _watched(request.url.port):
        response.stream = _AsyncTee(response.stream, _httpx_done(request, response))
    return response


# --- http.client --------------------------------------------------------------------------------
_putrequest = http.client.HTTPConnection.putrequest
_getresponse = http.client.HTTPConnection.getresponse


def _conn_putrequest(self: http.client.HTTPConnection, method: str, url: str, *args: Any, **kwargs: Any) -> None:
    self._conformance_request = (method, url)  # type: ignore[attr-defined]
    _putrequest(self, method, url, *args, **kwargs)


def _conn_getresponse(self: http.client.HTTPConnection) -> http.client.HTTPResponse:
    response = _getresponse(self)
    method, url = getattr(self, "_conformance_request", ("?", "?"))
    if _watched(self.port) and method != "HEAD":
        response._conformance = [method, url, []]  # type: ignore[attr-defined]
        _after_read(response, b"")  # a body-less answer (204, Content-Length: 0) is complete already
    return response


def _after_read(response: http.client.HTTPResponse, data: Any) -> None:
    state = getattr(response, "_conformance", None)
    if state is None:
        return
    if data:
        state[2].append(bytes(data))
    if getattr(response, "fp", None) is None:  # http.client closes the body's file once it has read all of it
        setattr(response, "_conformance", None)  # noqa: B010 (an attribute of our own on http.client's object)
        _report(state[0], state[1], response.status, response.getheader("content-type", "") or "",
                b"".join(state[2]))


def _teed(name: str) -> Callable[..., Any]:
    original = getattr(http.client.HTTPResponse, name)

    def read(self: http.client.HTTPResponse, *args: Any, **kwargs: Any) -> Any:
        # One read method may call another (e.g. through BufferedIOBase): record the outermost only.
        depth = getattr(self, "_conformance_depth", 0)
        self._conformance_depth = depth + 1  # type: ignore[attr-defined]
        try:
            result = original(self, *args, **kwargs)
        finally:
            self._conformance_depth = depth  # type: ignore[attr-defined]
        if depth:
            return result
        if name == "readinto":
            _after_read(self, memoryview(args[0])[:result] if result else b"")
        else:
            _after_read(self, result)
        return result
    return read


_READS = ("read", "read1", "readline", "readinto")


# urllib3 (under requests) reads chunked bodies from http.client's socket file directly, past the
# read methods above; its read_chunked generator is teed into the same http.client response state.
_read_chunked = urllib3.response.HTTPResponse.read_chunked


def _urllib3_read_chunked(self: urllib3.response.HTTPResponse, *args: Any, **kwargs: Any) -> Iterator[bytes]:
    original = self._original_response
    for part in _read_chunked(self, *args, **kwargs):
        state = getattr(original, "_conformance", None)
        if state is not None:
            state[2].append(bytes(part))
        yield part
    if original is not None:
        _after_read(original, b"")


def install() -> None:
    """Wrap the client stacks (idempotent)."""
    global installed
    if installed:
        return
    httpx2.HTTPTransport.handle_request = _handle_request  # type: ignore[method-assign]
    httpx2.AsyncHTTPTransport.handle_async_request = _handle_async_request  # type: ignore[method-assign]
    http.client.HTTPConnection.putrequest = _conn_putrequest  # type: ignore[method-assign]
    http.client.HTTPConnection.getresponse = _conn_getresponse  # type: ignore[method-assign]
    for name in _READS:
        setattr(http.client.HTTPResponse, name, _teed(name))
    urllib3.response.HTTPResponse.read_chunked = _urllib3_read_chunked  # type: ignore[method-assign,assignment]
    installed = True


def take() -> list[Violation]:
    """The violations found since the last call."""
    with _lock:
        found = list(pending)
        pending.clear()
    return found
