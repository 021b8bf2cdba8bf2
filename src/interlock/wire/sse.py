"""Server-sent events: an incremental decoder and the framing helpers.

Upstream bytes arrive in arbitrary slices; the decoder turns them into whole
events without copying more than it must. The common case - ``data: {...}``
events separated by a blank line with ``\\n`` line ends - takes one ``find``
per event; CR/CRLF line ends and multi-line data are handled as the spec
(https://html.spec.whatwg.org/multipage/server-sent-events.html) says.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = b"[DONE]"


@dataclass(slots=True)
class Event:
    data: bytes
    event: bytes | None = None

    def __init__(self, data: bytes, event: bytes | None = None) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        self.data = data
        self.event = event


class SSEDecoder:
    __slots__ = ("_buf", "_skip_lf")

    def __init__(self) -> None:
        self._buf = b""
        # The previous slice ended in CR: a LF opening this one completes that CRLF.
        self._skip_lf = False

    def _blocks(self, chunk: bytes) -> list[bytes]:
        """Complete event blocks (without their blank-line terminator); keeps the rest."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if buf.find(b"\r") >= 0:  # find, not `in`: bytes' `in` formats a TypeError before it searches
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()
        return blocks

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        for block in self._blocks(chunk):
            if block.startswith(b"data: ") and block.find(b"\n") < 0:
                events.append(Event(block[6:]))
                continue
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """Only the data of each event (event names and comments dropped): the relay's fast path."""
        # One whole "data:" event per read, as vendors flush each token: its only line feeds are the final two.
        if (not self._buf and not self._skip_lf and chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
                and chunk.find(b"\n") == len(chunk) - 2 and chunk.find(b"\r") < 0):
            return [chunk[6:-2]] if len(chunk) > 8 else []
        if not self._skip_lf and chunk.find(b"\r") < 0:
            buf = self._buf + chunk if self._buf else chunk
            end = buf.rfind(b"\n\n")
            if end < 0:
                self._buf = buf
                return []
            complete = buf[:end]
            # Every event one "data: " line (what vendors send): n events have exactly 2(n-1) line feeds.
            events = complete.count(b"\n\ndata: ") + 1
            if complete.startswith(b"data: ") and complete.count(b"\n") == 2 * (events - 1):
                self._buf = buf[end + 2:]
                payloads = complete[6:].split(b"\n\ndata: ")
                return [p for p in payloads if p] if b"" in payloads else payloads
        out: list[bytes] = []
        for block in self._blocks(chunk):
            if block.startswith(b"data: ") and block.find(b"\n") < 0:
                if len(block) > 6:
                    out.append(block[6:])
                continue
            event = _parse_block(block)
            if event is not None and event.data:
                out.append(event.data)
        return out

    @property
    def pending(self) -> bytes:
        """Bytes of an event that has not been terminated yet."""
        return self._buf


def _parse_block(block: bytes) -> Event | None:
    data: list[bytes] = []
    name: bytes | None = None
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
    if not data and name is None:
        return None
    return Event(b"\n".join(data), name)


def frame(data: bytes) -> bytes:
    """One ``data:`` event."""
    return b"data: " + data + b"\n\n"


def frame_named(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


DONE_FRAME = b"data: [DONE]\n\n"
